// Typed errors of the OpenStack clients. Messages carry the service, the HTTP status, the
// request ID (what an operator greps for in the cloud's logs) and the server's own message —
// never a token or a password.

export type OpenStackService = 'identity' | 'compute' | 'volumev3' | 'image' | 'network';

export class OpenStackError extends Error {
  override name = 'OpenStackError';
  constructor(
    readonly service: OpenStackService,
    readonly status: number,
    readonly requestId: string | undefined,
    readonly serverMessage: string,
    readonly method: string,
    readonly path: string,
  ) {
    super(`${service} ${method} ${path} failed: HTTP ${status}${requestId ? ` (request ${requestId})` : ''}: ${serverMessage}`);
  }

  get notFound(): boolean {
    return this.status === 404;
  }

  /** Reads the error body of any OpenStack service: `{"itemNotFound": {"message": ...}}`,
   *  `{"error": {"message": ...}}`, `{"NeutronError": {...}}`, Glance's HTML/plain text. */
  static serverMessage(body: string): string {
    try {
      const parsed = JSON.parse(body) as Record<string, unknown>;
      for (const value of Object.values(parsed)) {
        if (value && typeof value === 'object' && 'message' in value) return String((value as { message: unknown }).message);
        if (typeof value === 'string') return value;
      }
    } catch {
      // not JSON: fall through to text
    }
    return body.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 500) || '(empty body)';
  }
}

/** No answer within the time allowed, or the connection failed (after the retries allowed). */
export class OpenStackUnavailableError extends Error {
  override name = 'OpenStackUnavailableError';
  constructor(
    readonly service: OpenStackService,
    readonly method: string,
    readonly path: string,
    readonly reason: 'timeout' | 'connection',
    cause?: unknown,
  ) {
    super(`${service} ${method} ${path}: ${reason === 'timeout' ? 'no answer in time' : 'connection failed'}${cause instanceof Error ? ` (${cause.message})` : ''}`, { cause });
  }
}

/** A polled resource did not reach the wanted state in time, or reached an error state. */
export class OpenStackWaitError extends Error {
  override name = 'OpenStackWaitError';
  constructor(
    readonly what: string,
    readonly lastStatus: string | undefined,
    readonly reason: 'timeout' | 'error-state',
  ) {
    super(reason === 'timeout'
      ? `${what} did not become ready in time (last status ${lastStatus ?? 'unknown'})`
      : `${what} went to status ${lastStatus}`);
  }
}

/** No endpoint for this service type, interface and region in the token's catalog. */
export class OpenStackCatalogError extends Error {
  override name = 'OpenStackCatalogError';
  constructor(readonly serviceType: string, readonly iface: string, readonly region: string) {
    super(`no ${iface} endpoint for service ${serviceType} in region ${region} in the catalog`);
  }
}
