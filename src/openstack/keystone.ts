// Keystone v3: password authentication (project- or domain-scoped), the token it returns, and
// the identity calls inventory needs (projects, domains).
import { selectEndpoint, type CatalogService, serviceTypes, type EndpointInterface } from './catalog.ts';
import { OpenStackError } from './errors.ts';
import { HttpClient, requestIdOf } from './http.ts';

export type NameOrId = { name: string } | { id: string };

export type PasswordCredentials = {
  username: string;
  password: string;
  /** The user's domain. */
  userDomain: NameOrId;
};

export type AuthScope =
  | { project: { id: string } }
  | { project: { name: string; domain: NameOrId } }
  | { domain: NameOrId };

export type Ref = { id: string; name: string };

export type Token = {
  /** The X-Subject-Token; sent as X-Auth-Token, never logged. */
  value: string;
  expiresAt: Date;
  issuedAt: Date;
  catalog: CatalogService[];
  project?: Ref & { domain: Ref };
  domain?: Ref;
  user: Ref & { domain: Ref };
  roles: Ref[];
};

export type KeystoneProject = {
  id: string;
  name: string;
  domain_id: string;
  enabled: boolean;
  description: string;
  is_domain: boolean;
  parent_id: string | null;
  tags: string[];
};

export type KeystoneDomain = { id: string; name: string; enabled: boolean; description: string };

type TokenBody = {
  token: {
    expires_at: string;
    issued_at: string;
    catalog?: CatalogService[];
    project?: Ref & { domain: Ref };
    domain?: Ref;
    user: Ref & { domain: Ref };
    roles?: Ref[];
  };
};

/** `http://host:5000`, `…/v3` and `…/v3/` all mean the v3 API root. */
export function normalizeAuthUrl(url: string): string {
  const trimmed = url.replace(/\/+$/, '');
  return /\/v3$/.test(trimmed) ? trimmed : `${trimmed}/v3`;
}

export class KeystoneClient {
  readonly authUrl: string;
  constructor(authUrl: string, readonly http: HttpClient = new HttpClient()) {
    this.authUrl = normalizeAuthUrl(authUrl);
  }

  async issueToken(credentials: PasswordCredentials, scope: AuthScope, signal?: AbortSignal): Promise<Token> {
    const res = await this.http.request({
      service: 'identity',
      method: 'POST',
      url: `${this.authUrl}/auth/tokens`,
      idempotent: true, // issuing a token changes nothing that a retry could double
      signal,
      json: {
        auth: {
          identity: {
            methods: ['password'],
            password: { user: { name: credentials.username, password: credentials.password, domain: credentials.userDomain } },
          },
          scope,
        },
      },
    });
    const value = res.headers.get('x-subject-token');
    if (!value) {
      throw new OpenStackError('identity', res.status, requestIdOf(res.headers), 'no X-Subject-Token in the answer', 'POST', '/v3/auth/tokens');
    }
    const t = (res.json as TokenBody).token;
    return {
      value,
      expiresAt: new Date(t.expires_at),
      issuedAt: new Date(t.issued_at),
      catalog: t.catalog ?? [],
      project: t.project,
      domain: t.domain,
      user: t.user,
      roles: t.roles ?? [],
    };
  }

  /** The identity endpoint to use for calls other than auth (the catalog's, else the auth URL). */
  identityUrl(token: Token, iface: EndpointInterface, region: string): string {
    try {
      return normalizeAuthUrl(selectEndpoint(token.catalog, serviceTypes.identity, iface, region));
    } catch {
      return this.authUrl;
    }
  }

  async listProjects(token: Token, opts: { iface: EndpointInterface; region: string; domainId?: string; signal?: AbortSignal }): Promise<KeystoneProject[]> {
    const q = opts.domainId ? `?domain_id=${encodeURIComponent(opts.domainId)}` : '';
    const res = await this.#get(token, `/projects${q}`, opts);
    return (res as { projects: KeystoneProject[] }).projects;
  }

  async listDomains(token: Token, opts: { iface: EndpointInterface; region: string; signal?: AbortSignal }): Promise<KeystoneDomain[]> {
    const res = await this.#get(token, '/domains', opts);
    return (res as { domains: KeystoneDomain[] }).domains;
  }

  async #get(token: Token, path: string, opts: { iface: EndpointInterface; region: string; signal?: AbortSignal }): Promise<unknown> {
    const res = await this.http.request({
      service: 'identity',
      method: 'GET',
      url: `${this.identityUrl(token, opts.iface, opts.region)}${path}`,
      headers: { 'X-Auth-Token': token.value },
      signal: opts.signal,
    });
    return res.json;
  }
}

/**
 * One credential set + scope → a token reused until shortly before it expires. Concurrent
 * callers share one authentication request (Keystone takes ~0.5 s per password check).
 */
export class TokenSource {
  #token?: Token;
  #pending?: Promise<Token>;

  constructor(
    readonly keystone: KeystoneClient,
    readonly credentials: PasswordCredentials,
    readonly scope: AuthScope,
    readonly opts: { refreshMarginMs?: number; now?: () => number } = {},
  ) {}

  /** How many tokens this source has asked Keystone for (for tests and metrics). */
  issued = 0;

  async get(signal?: AbortSignal): Promise<Token> {
    const now = this.opts.now?.() ?? Date.now();
    const margin = this.opts.refreshMarginMs ?? 120_000;
    if (this.#token && this.#token.expiresAt.getTime() - margin > now) return this.#token;
    this.#pending ??= this.keystone.issueToken(this.credentials, this.scope, signal)
      .then((t) => {
        this.issued++;
        this.#token = t;
        return t;
      })
      .finally(() => {
        this.#pending = undefined;
      });
    return this.#pending;
  }

  /** Forget the token (the server refused it). */
  invalidate(token?: Token): void {
    if (!token || this.#token === token) this.#token = undefined;
  }
}
