// A fault-injecting HTTP proxy between a client and the real Swift lab. Requests pass through
// untouched (Host header included, so S3 signatures and tempauth URLs stay valid) unless a rule
// matches; then it answers an error status, stalls past the client's timeout, resets the
// connection, cuts the transfer after some bytes, or lets the request land and loses the answer. `down()` makes it behave like a stopped
// server: every connection is reset until `up()`.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type Fault =
  | { kind: 'status'; status: number }
  | { kind: 'delay'; ms: number }
  | { kind: 'reset' }
  /** Forward the request, but after this many request-body bytes cut both connections. */
  | { kind: 'cut-request'; afterBytes: number; thenDown?: boolean }
  /** Forward the request, but cut the response after this many body bytes. */
  | { kind: 'cut-response'; afterBytes: number }
  /** Forward the request; when the server answers, drop the answer and reset the connection. */
  | { kind: 'lose-response' };

export type Rule = {
  match: (req: http.IncomingMessage) => boolean;
  fault: Fault;
  /** How many matching requests get the fault (default: all). */
  times?: number;
};

export type Seen = { method: string; url: string; fault?: Fault['kind'] };

export class FaultProxy {
  readonly seen: Seen[] = [];
  /** Requests being handled right now, and the most at once since the last clear(). */
  inFlight = 0;
  maxInFlight = 0;
  private rules: Rule[] = [];
  private isDown = false;
  private readonly server: http.Server;
  private readonly target: URL;

  private constructor(target: string) {
    this.target = new URL(target);
    this.server = http.createServer((req, res) => this.handle(req, res));
    this.server.keepAliveTimeout = 5_000;
  }

  static async start(target: string): Promise<FaultProxy> {
    const proxy = new FaultProxy(target);
    await new Promise<void>((resolve) => proxy.server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  add(rule: Rule): this {
    this.rules.push(rule);
    return this;
  }

  clear(): void {
    this.rules = [];
    this.seen.length = 0;
    this.maxInFlight = this.inFlight;
  }

  down(): void {
    this.isDown = true;
  }

  up(): void {
    this.isDown = false;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private takeFault(req: http.IncomingMessage): Fault | undefined {
    const rule = this.rules.find((r) => (r.times === undefined || r.times > 0) && r.match(req));
    if (!rule) return undefined;
    if (rule.times !== undefined) rule.times--;
    return rule.fault;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    res.on('close', () => this.inFlight--);
    if (this.isDown) {
      this.seen.push({ method: req.method!, url: req.url!, fault: 'reset' });
      req.socket.destroy();
      return;
    }
    const fault = this.takeFault(req);
    this.seen.push({ method: req.method!, url: req.url!, fault: fault?.kind });
    switch (fault?.kind) {
      case 'status':
        req.resume();
        req.on('end', () => {
          res.writeHead(fault.status, { 'Content-Type': 'text/plain', 'Content-Length': 14 });
          res.end('injected fault');
        });
        return;
      case 'reset':
        req.socket.destroy();
        return;
      case 'delay':
        setTimeout(() => this.forward(req, res), fault.ms).unref();
        return;
      default:
        this.forward(req, res, fault);
    }
  }

  private forward(req: http.IncomingMessage, res: http.ServerResponse, fault?: Fault): void {
    if (req.socket.destroyed) return;
    const upstream = http.request({
      host: this.target.hostname,
      port: this.target.port,
      method: req.method,
      path: req.url,
      headers: req.headers,
      agent: false,
    });
    const cut = () => {
      upstream.destroy();
      req.socket.destroy();
    };
    upstream.on('error', () => req.socket.destroy());
    upstream.on('response', (up) => {
      if (fault?.kind === 'lose-response') {
        up.resume();
        up.on('end', () => req.socket.destroy());
        return;
      }
      res.writeHead(up.statusCode ?? 502, up.headers);
      if (fault?.kind !== 'cut-response') {
        up.pipe(res);
        return;
      }
      let sent = 0;
      up.on('data', (chunk: Buffer) => {
        const room = fault.afterBytes - sent;
        if (room <= 0) return;
        res.write(chunk.subarray(0, room));
        sent += Math.min(room, chunk.length);
        // Let the bytes leave before the socket dies.
        if (sent >= fault.afterBytes) setTimeout(cut, 50);
      });
    });
    if (fault?.kind !== 'cut-request') {
      req.pipe(upstream);
      return;
    }
    let forwarded = 0;
    req.on('data', (chunk: Buffer) => {
      const room = fault.afterBytes - forwarded;
      if (room > 0) upstream.write(chunk.subarray(0, room));
      forwarded += chunk.length;
      if (forwarded >= fault.afterBytes) {
        req.pause();
        if (fault.thenDown) this.down();
        cut();
      }
    });
    req.on('end', () => upstream.end());
  }
}
