// Swift authentication: tempauth ("v1": X-Auth-User/X-Auth-Key → X-Storage-Url/X-Auth-Token)
// or Keystone v3 (password, project scope; the object-store endpoint is picked from the token's
// catalog by region, service name and interface). Tokens are reused until shortly before they
// expire, and dropped on a 401 so the next request authenticates again.
import { BackendError } from './backend.ts';
import { header, type HttpClient, type HttpResponse } from './http.ts';

export type SwiftSession = { storageUrl: string; token: string; expiresAt: number };

export type TempAuthConfig = { kind: 'v1'; authUrl: string; user: string; key: string };
export type KeystoneConfig = {
  kind: 'v3';
  authUrl: string;
  username: string;
  password: string;
  userDomain: { id?: string; name?: string };
  project: { id?: string; name?: string };
  projectDomain: { id?: string; name?: string };
  region?: string;
  serviceName?: string;
  interface: 'public' | 'internal' | 'admin';
};
export type AuthConfig = TempAuthConfig | KeystoneConfig;

/** Renew this long before the server says a token expires (clocks drift, requests take time). */
const RENEW_MARGIN_MS = 60_000;

export class SwiftAuth {
  private session: SwiftSession | undefined;
  private pending: Promise<SwiftSession> | undefined;

  constructor(
    private readonly config: AuthConfig,
    private readonly http: HttpClient,
    private readonly where: string,
    private readonly now: () => number = Date.now,
  ) {}

  /** A valid session, authenticating once for all callers that wait at the same time. */
  async get(): Promise<SwiftSession> {
    if (this.session && this.session.expiresAt - RENEW_MARGIN_MS > this.now()) return this.session;
    this.pending ??= this.authenticate().finally(() => (this.pending = undefined));
    this.session = await this.pending;
    return this.session;
  }

  /** The server refused this token (401): forget it so the next get() authenticates. */
  invalidate(token: string): void {
    if (this.session?.token === token) this.session = undefined;
  }

  private authenticate(): Promise<SwiftSession> {
    return this.config.kind === 'v1' ? this.tempAuth(this.config) : this.keystone(this.config);
  }

  private async tempAuth(c: TempAuthConfig): Promise<SwiftSession> {
    const res = await this.http.request({ method: 'GET', url: c.authUrl, headers: { 'X-Auth-User': c.user, 'X-Auth-Key': c.key } });
    this.checkAuthStatus(res, 'tempauth', 'ST_USER / ST_KEY');
    const storageUrl = header(res, 'x-storage-url');
    const token = header(res, 'x-auth-token');
    if (!storageUrl || !token) throw new BackendError('UNAVAILABLE', `${this.where}: tempauth answer lacks X-Storage-Url or X-Auth-Token`);
    const ttl = Number(header(res, 'x-auth-token-expires') ?? 3600);
    return { storageUrl, token, expiresAt: this.now() + ttl * 1000 };
  }

  private async keystone(c: KeystoneConfig): Promise<SwiftSession> {
    const body = {
      auth: {
        identity: {
          methods: ['password'],
          password: { user: { name: c.username, password: c.password, domain: c.userDomain } },
        },
        scope: { project: c.project.id ? { id: c.project.id } : { name: c.project.name, domain: c.projectDomain } },
      },
    };
    const res = await this.http.request({
      method: 'POST',
      url: c.authUrl.replace(/\/+$/, '') + '/auth/tokens',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: Buffer.from(JSON.stringify(body)),
    });
    this.checkAuthStatus(res, 'Keystone', 'OS_USERNAME / OS_PASSWORD / OS_PROJECT_NAME and their domains');
    const token = header(res, 'x-subject-token');
    let parsed: KeystoneTokenBody;
    try {
      parsed = JSON.parse(res.body.toString('utf8')) as KeystoneTokenBody;
    } catch {
      throw new BackendError('UNAVAILABLE', `${this.where}: Keystone answered ${res.status} with a body that is not JSON`);
    }
    if (!token || !parsed.token) throw new BackendError('UNAVAILABLE', `${this.where}: Keystone answer lacks X-Subject-Token or token`);
    const storageUrl = pickObjectStore(parsed.token.catalog ?? [], c, this.where);
    const expiresAt = parsed.token.expires_at ? Date.parse(parsed.token.expires_at) : this.now() + 3600_000;
    return { storageUrl, token, expiresAt };
  }

  private checkAuthStatus(res: HttpResponse, service: string, variables: string): void {
    if (res.status === 401 || res.status === 403) {
      throw new BackendError('DENIED', `${this.where}: ${service} refused the credentials (HTTP ${res.status}); check ${variables}`);
    }
    if (res.status >= 500 || res.status === 429 || res.status === 408) {
      throw new AuthServerError(`${service} answered HTTP ${res.status}`);
    }
    if (res.status < 200 || res.status >= 300) {
      throw new BackendError('INVALID', `${this.where}: ${service} answered HTTP ${res.status} to the authentication request`);
    }
  }
}

/** The identity service itself is in trouble (5xx, throttling): worth another try. */
export class AuthServerError extends Error {
  override name = 'AuthServerError';
}

type CatalogEndpoint = { interface: string; region?: string; region_id?: string; url: string };
type CatalogService = { type: string; name?: string; endpoints: CatalogEndpoint[] };
type KeystoneTokenBody = { token?: { expires_at?: string; catalog?: CatalogService[] } };

export function pickObjectStore(catalog: CatalogService[], c: KeystoneConfig, where: string): string {
  const services = catalog.filter((s) => s.type === 'object-store' && (!c.serviceName || s.name === c.serviceName));
  if (services.length > 1) {
    throw new BackendError('INVALID', `${where}: several object-store services (${services.map((s) => s.name).join(', ')}); set service_name=`);
  }
  const endpoints = services
    .flatMap((s) => s.endpoints)
    .filter((e) => e.interface === c.interface && (!c.region || e.region_id === c.region || e.region === c.region));
  if (endpoints.length === 0) {
    const wanted = [`interface ${c.interface}`, c.region && `region ${c.region}`, c.serviceName && `service name ${c.serviceName}`]
      .filter(Boolean)
      .join(', ');
    throw new BackendError('INVALID', `${where}: the Keystone catalog has no object-store endpoint with ${wanted}`);
  }
  const regions = new Set(endpoints.map((e) => e.region_id ?? e.region));
  if (!c.region && regions.size > 1) {
    throw new BackendError('INVALID', `${where}: object-store endpoints in several regions (${[...regions].join(', ')}); set region=`);
  }
  return endpoints[0].url;
}
