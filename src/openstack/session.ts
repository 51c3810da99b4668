// A scoped session: a token source plus the endpoint interface and region the cloud is reached
// through. Service clients call `request` with a service type and a path; the session adds the
// token, picks the endpoint from the token's catalog and retries once with a fresh token when
// the server says the token is no longer valid.
import type { Readable } from 'node:stream';
import { serviceTypes, selectEndpoint, type EndpointInterface } from './catalog.ts';
import { OpenStackError, type OpenStackService } from './errors.ts';
import type { HttpClient, HttpResponse } from './http.ts';
import type { Token, TokenSource } from './keystone.ts';

export type CallOptions = {
  query?: Record<string, string | number | boolean | undefined>;
  json?: unknown;
  body?: Readable | Buffer;
  headers?: Record<string, string>;
  expect?: 'json' | 'stream' | 'none';
  idempotent?: boolean;
  signal?: AbortSignal;
  timeoutMs?: number;
};

export class Session {
  constructor(
    readonly tokens: TokenSource,
    readonly http: HttpClient,
    readonly iface: EndpointInterface,
    readonly region: string,
  ) {}

  token(signal?: AbortSignal): Promise<Token> {
    return this.tokens.get(signal);
  }

  async endpoint(service: OpenStackService, signal?: AbortSignal): Promise<string> {
    const token = await this.token(signal);
    return selectEndpoint(token.catalog, serviceTypes[service], this.iface, this.region);
  }

  async request(service: OpenStackService, method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', path: string, opts: CallOptions = {}): Promise<HttpResponse> {
    for (let attempt = 1; ; attempt++) {
      const token = await this.token(opts.signal);
      const base = selectEndpoint(token.catalog, serviceTypes[service], this.iface, this.region);
      const url = new URL(base + path);
      for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
      try {
        return await this.http.request({
          service,
          method,
          url: url.toString(),
          headers: { ...opts.headers, 'X-Auth-Token': token.value },
          json: opts.json,
          body: opts.body,
          expect: opts.expect,
          idempotent: opts.idempotent,
          signal: opts.signal,
          timeoutMs: opts.timeoutMs,
        });
      } catch (err) {
        // A revoked or expired token: authenticate again, once (not for streamed uploads).
        if (err instanceof OpenStackError && err.status === 401 && attempt === 1 && !opts.body) {
          this.tokens.invalidate(token);
          continue;
        }
        throw err;
      }
    }
  }

  async json<T>(service: OpenStackService, method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', path: string, opts: CallOptions = {}): Promise<T> {
    return (await this.request(service, method, path, opts)).json as T;
  }
}

/** The microversion headers of Nova and Cinder. */
export function computeVersion(v: string): Record<string, string> {
  return { 'OpenStack-API-Version': `compute ${v}`, 'X-OpenStack-Nova-API-Version': v };
}
export function volumeVersion(v: string): Record<string, string> {
  return { 'OpenStack-API-Version': `volume ${v}` };
}

/** The `marker` of a `*_links` "next" link (Nova, Cinder, Neutron), or undefined at the end. */
export function nextMarker(links: { href: string; rel: string }[] | undefined): string | undefined {
  const next = links?.find((l) => l.rel === 'next');
  if (!next) return undefined;
  return new URL(next.href, 'http://x').searchParams.get('marker') ?? undefined;
}
