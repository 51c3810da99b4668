// A small HTTP client on node:http for the Swift API: keep-alive sockets from one bounded pool,
// a connect timeout, an idle timeout (no byte either way for that long), whole bodies in memory
// (objects are at most a pack, tens of MiB) and a check that the body arrived complete.
import http from 'node:http';
import https from 'node:https';

export type HttpResponse = { status: number; headers: http.IncomingHttpHeaders; body: Buffer };

export type HttpRequest = {
  method: string;
  url: string;
  headers?: Record<string, string | number>;
  body?: Uint8Array;
};

export class HttpTimeoutError extends Error {
  override name = 'TimeoutError';
  readonly code = 'ETIMEDOUT';
}

export class HttpClient {
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;

  constructor(
    sockets: number,
    private readonly connectTimeoutMs: number,
    private readonly idleTimeoutMs: number,
  ) {
    const options = { keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets };
    this.httpAgent = new http.Agent(options);
    this.httpsAgent = new https.Agent(options);
  }

  request(req: HttpRequest): Promise<HttpResponse> {
    const url = new URL(req.url);
    const isHttps = url.protocol === 'https:';
    const headers: Record<string, string | number> = { ...req.headers };
    if (req.body) headers['Content-Length'] = req.body.length;
    return new Promise((resolve, reject) => {
      const fail = (error: Error) => {
        request.destroy();
        reject(error);
      };
      const request = (isHttps ? https : http).request(url, {
        method: req.method,
        headers,
        agent: isHttps ? this.httpsAgent : this.httpAgent,
      });
      // Connect timeout: only while the socket is still connecting.
      request.on('socket', (socket) => {
        if (!socket.connecting) return;
        const timer = setTimeout(() => fail(new HttpTimeoutError(`connect timed out after ${this.connectTimeoutMs} ms`)), this.connectTimeoutMs);
        socket.once('connect', () => clearTimeout(timer));
        socket.once('close', () => clearTimeout(timer));
      });
      request.setTimeout(this.idleTimeoutMs, () => fail(new HttpTimeoutError(`no data for ${this.idleTimeoutMs} ms`)));
      request.on('error', reject);
      request.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('aborted', () => reject(Object.assign(new Error('aborted'), { code: 'ECONNRESET' })));
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          const expected = res.headers['content-length'];
          // A peer that closes early can end a body "cleanly"; the length tells the truth.
          if (expected !== undefined && req.method !== 'HEAD' && Number(expected) !== body.length) {
            reject(Object.assign(new Error(`body ended after ${body.length} of ${expected} bytes`), { code: 'ECONNRESET' }));
            return;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
        });
      });
      request.end(req.body);
    });
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}

export function header(res: HttpResponse, name: string): string | undefined {
  const value = res.headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}
