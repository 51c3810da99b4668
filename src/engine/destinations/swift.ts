// OpenStack Swift destination over the native API:
//   swift://container/prefix?auth=http://keystone:5000/v3&region=RegionOne   (Keystone v3)
//   swift://container/prefix?auth=http://proxy:8080/auth/v1.0                (tempauth "v1")
// Credentials come from the environment (see docs/destinations.md). Objects larger than the
// segment size become static large objects (SLO): segments go to `<container>_segments` and the
// manifest is PUT last, so a reader sees the whole object or nothing.
import { createHash, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import type { Backend, ObjectInfo } from './backend.ts';
import { BackendError } from './backend.ts';
import { header, HttpClient, type HttpRequest, type HttpResponse } from './http.ts';
import { emptyOrInvalidRange } from './range.ts';
import { isTransientNetworkError, mapLimit, Semaphore, withRetries, type RetryPolicy } from './retry.ts';
import { keyPrefix, MiB, QuerySettings, rejectUrlCredentials } from './settings.ts';
import { AuthServerError, SwiftAuth, type AuthConfig } from './swift-auth.ts';

const gzip = promisify(zlib.gzip);
const gunzip = promisify(zlib.gunzip);

export type SwiftSettings = {
  container: string;
  prefix: string;
  segmentContainer: string;
  /** Objects larger than this are uploaded as SLO segments of this size. */
  segmentSize: number;
  /** Requests in flight at once (the "thread count"); also the socket pool size. */
  threads: number;
  /** gzip objects (Content-Encoding) when that makes them smaller. */
  gzip: boolean;
  connectTimeoutMs: number;
  timeoutMs: number;
  retries: number;
  createContainer: boolean;
};

// Swift refuses objects above 5 GiB and SLO manifests above 1000 segments.
const MAX_OBJECT = 5 * 1024 * MiB;
const MAX_SEGMENTS = 1000;
const OCTETS = 'application/octet-stream';

export function parseSwiftUrl(url: URL, env: NodeJS.ProcessEnv): { settings: SwiftSettings; auth: AuthConfig; location: string } {
  rejectUrlCredentials(url, 'swift');
  const container = decodeURIComponent(url.hostname);
  if (!container) throw new BackendError('INVALID', 'swift destination: missing container (swift://container/prefix)');
  const q = new QuerySettings(url, 'swift');
  const authUrl = q.string('auth') ?? env.OS_AUTH_URL ?? env.ST_AUTH;
  if (!authUrl || !/^https?:\/\/[^/]/.test(authUrl)) {
    throw new BackendError('INVALID', 'swift destination: auth=http(s)://… (Keystone v3 or tempauth URL) is required');
  }
  const version = q.string('auth_version') ?? (/\/v3\/?$/.test(authUrl) ? '3' : '1');
  const prefix = keyPrefix(url.pathname);
  const location = `swift://${container}/${prefix} at ${authUrl}`;
  const iface = q.string('interface') ?? env.OS_INTERFACE ?? 'public';
  if (!['public', 'internal', 'admin'].includes(iface)) {
    throw new BackendError('INVALID', `swift destination: interface=${iface} must be public, internal or admin`);
  }
  const region = q.string('region') ?? env.OS_REGION_NAME;
  const serviceName = q.string('service_name');
  const settings: SwiftSettings = {
    container,
    prefix,
    segmentContainer: q.string('segment_container') ?? `${container}_segments`,
    segmentSize: q.size('segment_size', 256 * MiB, 1024, MAX_OBJECT),
    threads: q.int('threads', 8, 1, 256),
    gzip: q.bool('gzip', false),
    connectTimeoutMs: q.seconds('connect_timeout', 10, 0.1, 600),
    timeoutMs: q.seconds('timeout', 60, 0.1, 3600),
    retries: q.int('retries', 5, 0, 50),
    createContainer: q.bool('create_container', true),
  };
  q.rejectUnknown();
  return { settings, auth: authConfig(version, authUrl, env, location, { region, serviceName, iface }), location };
}

function authConfig(
  version: string,
  authUrl: string,
  env: NodeJS.ProcessEnv,
  location: string,
  o: { region?: string; serviceName?: string; iface: string },
): AuthConfig {
  if (version === '1' || version === '1.0') {
    const user = env.ST_USER ?? env.OS_USERNAME;
    const key = env.ST_KEY ?? env.OS_PASSWORD;
    if (!user || !key) throw new BackendError('INVALID', `${location}: set ST_USER and ST_KEY (tempauth) in the environment`);
    return { kind: 'v1', authUrl, user, key };
  }
  if (version !== '3') throw new BackendError('INVALID', `${location}: auth_version=${version} is not supported (use 1 or 3)`);
  const username = env.OS_USERNAME;
  const password = env.OS_PASSWORD;
  const projectName = env.OS_PROJECT_NAME ?? env.OS_TENANT_NAME;
  const projectId = env.OS_PROJECT_ID ?? env.OS_TENANT_ID;
  if (!username || !password || !(projectName || projectId)) {
    throw new BackendError('INVALID', `${location}: set OS_USERNAME, OS_PASSWORD and OS_PROJECT_NAME (or OS_PROJECT_ID) in the environment`);
  }
  const domain = (id?: string, name?: string) => (id ? { id } : { name: name ?? 'Default' });
  return {
    kind: 'v3',
    authUrl,
    username,
    password,
    userDomain: domain(env.OS_USER_DOMAIN_ID, env.OS_USER_DOMAIN_NAME),
    project: projectId ? { id: projectId } : { name: projectName },
    projectDomain: domain(env.OS_PROJECT_DOMAIN_ID, env.OS_PROJECT_DOMAIN_NAME),
    region: o.region,
    serviceName: o.serviceName,
    interface: o.iface as 'public' | 'internal' | 'admin',
  };
}

export async function openSwiftBackend(url: URL, env: NodeJS.ProcessEnv = process.env): Promise<Backend> {
  const { settings, auth, location } = parseSwiftUrl(url, env);
  const backend = new SwiftBackend(settings, auth, location);
  try {
    await backend.ensureContainer(settings.container);
  } catch (error) {
    await backend.close();
    throw error;
  }
  return backend;
}

/** A status worth another try: server trouble, throttling, or a checksum mismatch in transit. */
class RetryableStatus extends Error {
  constructor(readonly status: number) {
    super(`HTTP ${status}`);
  }
}
const retryableStatuses = new Set([408, 422, 429, 498]);

export class SwiftBackend implements Backend {
  private readonly http: HttpClient;
  private readonly auth: SwiftAuth;
  private readonly slots: Semaphore;
  private readonly retry: RetryPolicy;
  private segmentsReady: Promise<void> | undefined;

  constructor(
    private readonly settings: SwiftSettings,
    authConfig: AuthConfig,
    readonly location: string,
  ) {
    this.http = new HttpClient(settings.threads, settings.connectTimeoutMs, settings.timeoutMs);
    this.auth = new SwiftAuth(authConfig, this.http, location);
    this.slots = new Semaphore(settings.threads);
    this.retry = { retries: settings.retries, baseDelayMs: 200, maxDelayMs: 10_000 };
  }

  private objectPath(key: string): string {
    return `${encodePath(this.settings.container)}/${encodePath(this.settings.prefix + key)}`;
  }

  /**
   * One Swift request with auth, the thread limit and retries. `path` is relative to the storage
   * URL. Returns any non-retryable answer; the caller decides what 404 or 409 mean.
   */
  private async send(op: string, req: Omit<HttpRequest, 'url'> & { path: string }): Promise<HttpResponse> {
    let attempts = 0;
    try {
      return await withRetries(this.retry, isTransient, async () => {
        attempts++;
        let res = await this.attempt(req);
        if (res.response.status === 401) {
          // Token expired or revoked: authenticate again once, then the answer stands.
          this.auth.invalidate(res.token);
          res = await this.attempt(req);
          if (res.response.status === 401) {
            throw new BackendError('DENIED', `${this.location}: ${op} refused (HTTP 401) with a fresh token`);
          }
        }
        const status = res.response.status;
        if (status >= 500 || retryableStatuses.has(status)) throw new RetryableStatus(status);
        if (status === 403) throw new BackendError('DENIED', `${this.location}: ${op} forbidden (HTTP 403); check the account's roles and ACLs`);
        return res.response;
      });
    } catch (error) {
      if (error instanceof BackendError) throw error;
      const why = error instanceof RetryableStatus ? error.message : `${(error as Error).name}: ${(error as Error).message}`;
      throw new BackendError('UNAVAILABLE', `${this.location}: ${op} failed after ${attempts} attempt(s): ${why}`, { cause: error });
    }
  }

  private async attempt(req: Omit<HttpRequest, 'url'> & { path: string }): Promise<{ response: HttpResponse; token: string }> {
    const session = await this.auth.get();
    const response = await this.slots.run(() =>
      this.http.request({
        method: req.method,
        url: `${session.storageUrl.replace(/\/+$/, '')}/${req.path}`,
        headers: { ...req.headers, 'X-Auth-Token': session.token },
        body: req.body,
      }),
    );
    return { response, token: session.token };
  }

  async ensureContainer(name: string): Promise<void> {
    const head = await this.send(`open container ${name}`, { method: 'HEAD', path: encodePath(name) });
    if (head.status < 300) return;
    if (head.status !== 404 || !this.settings.createContainer) throw this.unexpected(`open container ${name}`, head);
    const put = await this.send(`create container ${name}`, { method: 'PUT', path: encodePath(name) });
    if (put.status !== 201 && put.status !== 202) throw this.unexpected(`create container ${name}`, put);
  }

  async get(key: string): Promise<Buffer> {
    const res = await this.send(`get ${key}`, { method: 'GET', path: this.objectPath(key) });
    if (res.status === 404) throw BackendError.notFound(this.location, key);
    if (res.status !== 200) throw this.unexpected(`get ${key}`, res);
    return header(res, 'content-encoding') === 'gzip' ? gunzip(res.body) : res.body;
  }

  async getRange(key: string, offset: number, length: number): Promise<Buffer> {
    const empty = await emptyOrInvalidRange(this, key, offset, length);
    if (empty) return empty;
    const op = `get ${key} (bytes ${offset}+${length})`;
    const res = await this.send(op, { method: 'GET', path: this.objectPath(key), headers: { Range: `bytes=${offset}-${offset + length - 1}` } });
    if (res.status === 404) throw BackendError.notFound(this.location, key);
    if (res.status === 416) throw new BackendError('INVALID', `${this.location}: ${op}: range outside the object`);
    if (res.status !== 200 && res.status !== 206) throw this.unexpected(op, res);
    // A gzipped object's ranges are ranges of the compressed bytes: read it whole instead.
    if (header(res, 'content-encoding') === 'gzip') return (await this.get(key)).subarray(offset, offset + length);
    return res.status === 206 ? res.body : res.body.subarray(offset, offset + length);
  }

  async put(key: string, data: Uint8Array): Promise<void> {
    let body = data;
    let contentType = OCTETS;
    const headers: Record<string, string> = {};
    if (this.settings.gzip) {
      const packed = await gzip(data);
      if (packed.length < data.length) {
        body = packed;
        headers['Content-Encoding'] = 'gzip';
        // Listings show stored (compressed) bytes; the logical size rides in the content type.
        contentType = `${OCTETS};strongbox-size=${data.length}`;
      }
    }
    if (body.length > MAX_OBJECT * MAX_SEGMENTS) throw new BackendError('INVALID', `${this.location}: ${key} is too large for Swift`);
    if (body.length > this.settings.segmentSize) return this.putSegmented(key, body, contentType, headers);
    const res = await this.send(`put ${key}`, {
      method: 'PUT',
      path: this.objectPath(key),
      headers: { ...headers, 'Content-Type': contentType, ETag: md5Hex(body) },
      body,
    });
    if (res.status !== 201) throw this.unexpected(`put ${key}`, res);
  }

  private async putSegmented(key: string, body: Uint8Array, contentType: string, headers: Record<string, string>): Promise<void> {
    const s = this.settings;
    const segmentSize = Math.max(s.segmentSize, Math.ceil(body.length / MAX_SEGMENTS));
    this.segmentsReady ??= this.ensureContainer(s.segmentContainer).catch((error) => {
      this.segmentsReady = undefined;
      throw error;
    });
    await this.segmentsReady;
    // A fresh name per upload: a retry or a concurrent writer of the same key never mixes segments.
    const uploadId = `${Date.now().toString(36)}-${randomBytes(6).toString('hex')}`;
    const base = `${s.prefix}${key}/${uploadId}/`;
    const starts = Array.from({ length: Math.ceil(body.length / segmentSize) }, (_, i) => i * segmentSize);
    const uploaded: string[] = [];
    let manifestSent = false;
    try {
      const manifest = await mapLimit(starts, s.threads, async (start, i) => {
        const name = `${base}${String(i).padStart(8, '0')}`;
        const segment = body.subarray(start, start + segmentSize);
        const etag = md5Hex(segment);
        const res = await this.send(`put ${key} segment ${i}`, {
          method: 'PUT',
          path: `${encodePath(s.segmentContainer)}/${encodePath(name)}`,
          headers: { 'Content-Type': OCTETS, ETag: etag },
          body: segment,
        });
        if (res.status !== 201) throw this.unexpected(`put ${key} segment ${i}`, res);
        uploaded.push(name);
        return { path: `/${s.segmentContainer}/${name}`, etag, size_bytes: segment.length };
      });
      manifestSent = true;
      const res = await this.send(`put ${key} (manifest)`, {
        method: 'PUT',
        path: `${this.objectPath(key)}?multipart-manifest=put`,
        headers: { ...headers, 'Content-Type': contentType },
        body: Buffer.from(JSON.stringify(manifest)),
      });
      if (res.status !== 201) throw this.unexpected(`put ${key} (manifest)`, res);
    } catch (error) {
      // If the manifest may have landed (answer lost), look before deleting its segments.
      if (manifestSent) {
        const outcome = await this.manifestOutcome(key, uploadId);
        if (outcome === 'ours') return;
        if (outcome === 'unknown') throw error;
      }
      await mapLimit(uploaded, s.threads, (name) =>
        this.send(`clean up ${key}`, { method: 'DELETE', path: `${encodePath(s.segmentContainer)}/${encodePath(name)}` }),
      ).catch(() => {
        // Best effort: the server may be why we failed. Leftover segments are never visible as
        // objects of this destination (they live in the segment container).
      });
      throw error;
    }
  }

  private async manifestOutcome(key: string, uploadId: string): Promise<'ours' | 'absent' | 'unknown'> {
    try {
      const res = await this.send(`check ${key}`, { method: 'GET', path: `${this.objectPath(key)}?multipart-manifest=get` });
      if (res.status === 404) return 'absent';
      if (res.status !== 200) return 'unknown';
      const segments = JSON.parse(res.body.toString('utf8')) as Array<{ name: string }>;
      return segments.some((seg) => seg.name.includes(`/${uploadId}/`)) ? 'ours' : 'absent';
    } catch {
      return 'unknown';
    }
  }

  async stat(key: string): Promise<ObjectInfo | null> {
    const res = await this.send(`stat ${key}`, { method: 'HEAD', path: this.objectPath(key) });
    if (res.status === 404) return null;
    if (res.status !== 200) throw this.unexpected(`stat ${key}`, res);
    return { key, size: logicalSize(header(res, 'content-type'), Number(header(res, 'content-length') ?? 0)) };
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    let marker = '';
    for (;;) {
      const query = new URLSearchParams({ format: 'json', limit: '1000', prefix: this.settings.prefix + prefix, marker });
      const res = await this.send(`list ${prefix || '(all)'}`, { method: 'GET', path: `${encodePath(this.settings.container)}?${query}` });
      if (res.status === 404) {
        throw new BackendError('NOT_FOUND', `${this.location}: container ${this.settings.container} does not exist`);
      }
      if (res.status === 204) return;
      if (res.status !== 200) throw this.unexpected(`list ${prefix}`, res);
      const page = JSON.parse(res.body.toString('utf8')) as Array<{ name: string; bytes: number; content_type?: string }>;
      for (const o of page) {
        yield { key: o.name.slice(this.settings.prefix.length), size: logicalSize(o.content_type, o.bytes) };
      }
      if (page.length === 0) return;
      marker = page[page.length - 1].name;
    }
  }

  async delete(key: string): Promise<void> {
    const head = await this.send(`delete ${key}`, { method: 'HEAD', path: this.objectPath(key) });
    if (head.status === 404) return;
    const slo = header(head, 'x-static-large-object') === 'True';
    // For an SLO, delete the manifest and its segments in one call (Swift's bulk delete).
    const res = await this.send(`delete ${key}`, {
      method: 'DELETE',
      path: slo ? `${this.objectPath(key)}?multipart-manifest=delete` : this.objectPath(key),
      headers: { Accept: 'application/json' },
    });
    if (res.status === 404 || res.status === 204) return;
    if (slo && res.status === 200) {
      const outcome = JSON.parse(res.body.toString('utf8')) as { 'Response Status': string; Errors: unknown[] };
      if (/^(200|404)/.test(outcome['Response Status'])) return;
      throw new BackendError('UNAVAILABLE', `${this.location}: delete ${key}: ${outcome['Response Status']} ${JSON.stringify(outcome.Errors)}`);
    }
    throw this.unexpected(`delete ${key}`, res);
  }

  async close(): Promise<void> {
    this.http.close();
  }

  private unexpected(op: string, res: HttpResponse): BackendError {
    const code = res.status >= 400 && res.status < 500 ? 'INVALID' : 'UNAVAILABLE';
    const detail = res.body.toString('utf8').replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 200);
    return new BackendError(code, `${this.location}: ${op}: unexpected HTTP ${res.status}${detail ? ` (${detail})` : ''}`);
  }
}

function isTransient(error: unknown): boolean {
  return error instanceof RetryableStatus || error instanceof AuthServerError || isTransientNetworkError(error);
}

/** Swift object names may hold any character but "/" separates path parts in the URL. */
function encodePath(name: string): string {
  return name.split('/').map(encodeURIComponent).join('/');
}

function logicalSize(contentType: string | undefined, stored: number): number {
  const match = /;\s*strongbox-size=(\d+)/.exec(contentType ?? '');
  return match ? Number(match[1]) : stored;
}

function md5Hex(data: Uint8Array): string {
  return createHash('md5').update(data).digest('hex');
}
