// The one HTTP path of the OpenStack clients: Node's fetch (undici, keep-alive connections),
// a timeout per attempt, retries with backoff on 5xx and connection failures for idempotent
// calls only, and OpenStack errors turned into typed errors with the request ID.
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { OpenStackError, OpenStackUnavailableError, type OpenStackService } from './errors.ts';
import { openstackApiErrors } from '../observability/metrics.ts';
import { currentRequestId, log, openStackGlobalRequestId } from '../observability/request-context.ts';
import { inSpan } from '../observability/tracing.ts';

export type HttpOptions = {
  /** Time allowed for one attempt until the response headers (and a JSON body) arrive; also the longest pause a streamed body may make. */
  timeoutMs?: number;
  /** Extra attempts after a 5xx or connection failure, for idempotent calls. */
  retries?: number;
  /** First backoff delay; doubles per attempt, with jitter. */
  backoffMs?: number;
};

export type HttpRequest = {
  service: OpenStackService;
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: string;
  headers?: Record<string, string>;
  json?: unknown;
  /** A raw body (uploads); never retried. */
  body?: Readable | Buffer;
  /** Retry-safe even though the method is not (e.g. issuing a token). */
  idempotent?: boolean;
  /** `stream` returns the body unread (downloads); `json` parses it; `none` discards it. */
  expect?: 'json' | 'stream' | 'none';
  signal?: AbortSignal;
  timeoutMs?: number;
};

export type HttpResponse = {
  status: number;
  headers: Headers;
  json?: unknown;
  stream?: Readable;
};

const idempotentMethods = new Set(['GET', 'HEAD', 'PUT', 'DELETE']);

export function requestIdOf(headers: Headers): string | undefined {
  return headers.get('x-openstack-request-id') ?? headers.get('x-compute-request-id') ?? undefined;
}

/** Every failed attempt counts (retries included); a caller's own abort does not. */
function countError(service: OpenStackService, err: unknown) {
  let kind: string;
  if (err instanceof OpenStackUnavailableError) kind = err.reason;
  else if (!(err instanceof OpenStackError)) return;
  else if (err.status === 404) kind = 'not_found';
  else if (err.status >= 500) kind = 'server_error';
  else if (err.status >= 400) kind = 'client_error';
  else kind = 'invalid_response';
  openstackApiErrors.inc({ service, kind });
}

/** A URL path with its IDs (UUIDs, long hex, numbers) replaced by `{id}`: what a call is, for logs. */
export function pathTemplate(pathname: string): string {
  return pathname.split('/').map((part) => (/^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{16,}|\d+)$/i.test(part) ? '{id}' : part)).join('/');
}

export class HttpClient {
  readonly timeoutMs: number;
  readonly retries: number;
  readonly backoffMs: number;

  constructor(opts: HttpOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.retries = opts.retries ?? 3;
    this.backoffMs = opts.backoffMs ?? 200;
  }

  async request(req: HttpRequest): Promise<HttpResponse> {
    const retryable = !req.body && (req.idempotent ?? idempotentMethods.has(req.method));
    const attempts = retryable ? this.retries + 1 : 1;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#traced(req);
      } catch (err) {
        countError(req.service, err);
        const transient = err instanceof OpenStackUnavailableError
          || (err instanceof OpenStackError && err.status >= 500);
        if (!transient || attempt >= attempts || req.signal?.aborted) throw err;
        const delay = this.backoffMs * 2 ** (attempt - 1) * (0.75 + Math.random() / 2);
        await sleep(delay, undefined, { signal: req.signal }).catch((e) => {
          throw req.signal?.aborted ? req.signal.reason : e;
        });
      }
    }
  }

  /** One attempt in a span: service, method, path template, status, the cloud's request ID. */
  #traced(req: HttpRequest): Promise<HttpResponse> {
    const path = pathTemplate(new URL(req.url).pathname);
    return inSpan(`openstack ${req.service} ${req.method}`, { 'openstack.service': req.service, 'http.request.method': req.method, 'url.path': path }, async (span) => {
      try {
        const res = await this.#once(req);
        span.setAttributes({ 'http.response.status_code': res.status, 'openstack.request_id': requestIdOf(res.headers) ?? '' });
        return res;
      } catch (e) {
        if (e instanceof OpenStackError) span.setAttributes({ 'http.response.status_code': e.status, 'openstack.request_id': e.requestId ?? '' });
        throw e;
      }
    });
  }

  async #once(req: HttpRequest): Promise<HttpResponse> {
    const url = new URL(req.url);
    const where = url.pathname + url.search;
    const timer = new AbortController();
    const timeout = setTimeout(() => timer.abort(), req.timeoutMs ?? this.timeoutMs);
    const signal = req.signal ? AbortSignal.any([req.signal, timer.signal]) : timer.signal;
    const headers: Record<string, string> = { Accept: 'application/json', ...req.headers };
    // Our request ID becomes the call's global request ID: the cloud's logs name the same work.
    const requestId = currentRequestId();
    if (requestId) headers['X-OpenStack-Request-ID'] ??= openStackGlobalRequestId(requestId);
    const started = performance.now();
    const logCall = (status: number | undefined, answered: Headers | undefined, err?: unknown) => {
      const line = {
        service: req.service, method: req.method, path: pathTemplate(url.pathname), status,
        durationMs: Math.round((performance.now() - started) * 10) / 10,
        openstackRequestId: answered ? requestIdOf(answered) : undefined,
        ...(err ? { error: (err as Error).message } : {}),
      };
      if (err || (status ?? 0) >= 400) log().warn(line, 'openstack call');
      else log().debug(line, 'openstack call');
    };
    let body: BodyInit | undefined;
    if (req.json !== undefined) {
      headers['Content-Type'] ??= 'application/json';
      body = JSON.stringify(req.json);
    } else if (req.body instanceof Readable) {
      body = Readable.toWeb(req.body) as ReadableStream;
    } else if (req.body) {
      body = new Uint8Array(req.body);
    }
    try {
      let res: Response;
      try {
        res = await fetch(url, { method: req.method, headers, body, signal, ...(body instanceof ReadableStream ? { duplex: 'half' } : {}) } as RequestInit);
      } catch (err) {
        logCall(undefined, undefined, err);
        if (req.signal?.aborted) throw req.signal.reason ?? err;
        throw new OpenStackUnavailableError(req.service, req.method, where, timer.signal.aborted ? 'timeout' : 'connection', err);
      }
      logCall(res.status, res.headers);
      if (res.status >= 400) {
        const text = await res.text().catch(() => '');
        throw new OpenStackError(req.service, res.status, requestIdOf(res.headers), OpenStackError.serverMessage(text), req.method, where);
      }
      const expect = req.expect ?? 'json';
      if (expect === 'stream') {
        clearTimeout(timeout);
        const body = res.body ? Readable.fromWeb(res.body as never) : Readable.from([]);
        return { status: res.status, headers: res.headers, stream: idleLimited(body, req.timeoutMs ?? this.timeoutMs, () => new OpenStackUnavailableError(req.service, req.method, where, 'timeout', new Error('the body stalled'))) };
      }
      let text: string;
      try {
        text = await res.text();
      } catch (err) {
        if (req.signal?.aborted) throw req.signal.reason ?? err;
        throw new OpenStackUnavailableError(req.service, req.method, where, timer.signal.aborted ? 'timeout' : 'connection', err);
      }
      if (expect === 'none' || text === '') return { status: res.status, headers: res.headers };
      try {
        return { status: res.status, headers: res.headers, json: JSON.parse(text) };
      } catch {
        throw new OpenStackError(req.service, res.status, requestIdOf(res.headers), `unreadable JSON response: ${text.slice(0, 200)}`, req.method, where);
      }
    } finally {
      if ((req.expect ?? 'json') !== 'stream') clearTimeout(timeout);
    }
  }
}

/**
 * A streamed body may take as long as it needs, but not stall: waiting more than `idleMs` for the
 * server's next chunk fails the stream with `error()` and closes the connection, so a download
 * that stops flowing ends the work instead of holding it until someone cancels. Only the wait on
 * the server counts, not a consumer that is slow to read.
 */
function idleLimited(body: Readable, idleMs: number, error: () => Error): Readable {
  const chunks = body[Symbol.asyncIterator]();
  return Readable.from((async function* () {
    try {
      for (;;) {
        let stall: NodeJS.Timeout | undefined;
        const timedOut = new Promise<never>((_, reject) => (stall = setTimeout(() => reject(error()), idleMs)));
        const next = await Promise.race([chunks.next(), timedOut]).finally(() => clearTimeout(stall));
        if (next.done) return;
        yield next.value as Buffer;
      }
    } finally {
      body.destroy();
    }
  })(), { objectMode: false });
}
