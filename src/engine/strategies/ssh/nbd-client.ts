// A minimal NBD client (fixed newstyle handshake, NBD_OPT_GO, simple replies) over any duplex
// stream: an SSH channel forwarded to qemu-nbd's unix socket, or a plain TCP socket in netcat
// mode. Reads for backups; writes and flush for restores onto a disk served writable. Requests
// are pipelined and answered by their cookie.
import type { Duplex } from 'node:stream';
import { StrategyError } from '../disk-source.ts';

const NBDMAGIC = Buffer.from('NBDMAGIC');
const IHAVEOPT = Buffer.from('IHAVEOPT');
const OPT_REPLY_MAGIC = 0x3e889045565a9n;
const REQUEST_MAGIC = 0x25609513;
const SIMPLE_REPLY_MAGIC = 0x67446698;
const OPT_GO = 7;
const REP_ACK = 1;
const REP_INFO = 3;
const INFO_EXPORT = 0;
const CMD_READ = 0;
const CMD_WRITE = 1;
const CMD_DISC = 2;
const CMD_FLUSH = 3;
const FLAG_READ_ONLY = 1 << 1;
const FLAG_SEND_FLUSH = 1 << 2;
const FLAG_C_FIXED_NEWSTYLE = 1;
const FLAG_C_NO_ZEROES = 2;

interface Pending {
  /** Payload bytes the reply carries (reads only). */
  length: number;
  type: number;
  resolve: (b: Buffer) => void;
  reject: (e: Error) => void;
}

/** Byte queue over a stream: await exactly n bytes. */
class Reader {
  private chunks: Buffer[] = [];
  private have = 0;
  private waiter: { n: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | null = null;
  private error: Error | null = null;

  constructor(stream: Duplex) {
    stream.on('data', (c: Buffer) => {
      this.chunks.push(c);
      this.have += c.length;
      this.pump();
    });
    const fail = (e: Error) => {
      this.error ??= e;
      this.waiter?.reject(this.error);
      this.waiter = null;
    };
    stream.on('error', fail);
    stream.on('close', () => fail(new StrategyError('TRANSFER_FAILED', 'NBD connection closed')));
    stream.on('end', () => fail(new StrategyError('TRANSFER_FAILED', 'NBD connection ended')));
  }

  read(n: number): Promise<Buffer> {
    if (this.error) return Promise.reject(this.error);
    return new Promise((resolve, reject) => {
      this.waiter = { n, resolve, reject };
      this.pump();
    });
  }

  private pump() {
    const w = this.waiter;
    if (!w || this.have < w.n) return;
    const all = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
    this.chunks = all.length > w.n ? [all.subarray(w.n)] : [];
    this.have -= w.n;
    this.waiter = null;
    w.resolve(all.subarray(0, w.n));
  }
}

export class NbdClient {
  size = 0;
  /** Transmission flags of the export (read-only, flush support…). */
  flags = 0;
  private reader: Reader;
  private cookie = 0n;
  private pending = new Map<bigint, Pending>();
  private loop: Promise<void> | null = null;
  private closed = false;
  /** Set once the reply loop died: later reads fail at once instead of waiting forever. */
  private failure: Error | null = null;

  private constructor(private stream: Duplex) {
    this.reader = new Reader(stream);
  }

  static async connect(stream: Duplex, exportName = ''): Promise<NbdClient> {
    const c = new NbdClient(stream);
    await c.handshake(exportName);
    c.loop = c.replyLoop();
    return c;
  }

  private async handshake(exportName: string) {
    const hello = await this.reader.read(18);
    if (!hello.subarray(0, 8).equals(NBDMAGIC) || !hello.subarray(8, 16).equals(IHAVEOPT)) {
      throw new StrategyError('TRANSFER_FAILED', 'peer is not a newstyle NBD server');
    }
    const flags = Buffer.alloc(4);
    flags.writeUInt32BE(FLAG_C_FIXED_NEWSTYLE | FLAG_C_NO_ZEROES);
    const name = Buffer.from(exportName);
    const data = Buffer.alloc(4 + name.length + 2);
    data.writeUInt32BE(name.length, 0);
    name.copy(data, 4);
    data.writeUInt16BE(0, 4 + name.length); // no extra info requests
    const head = Buffer.alloc(16);
    IHAVEOPT.copy(head, 0);
    head.writeUInt32BE(OPT_GO, 8);
    head.writeUInt32BE(data.length, 12);
    this.stream.write(Buffer.concat([flags, head, data]));
    for (;;) {
      const r = await this.reader.read(20);
      if (r.readBigUInt64BE(0) !== OPT_REPLY_MAGIC) throw new StrategyError('TRANSFER_FAILED', 'bad NBD option reply');
      const type = r.readUInt32BE(12);
      const body = await this.reader.read(r.readUInt32BE(16));
      if (type === REP_ACK) break;
      if (type === REP_INFO && body.readUInt16BE(0) === INFO_EXPORT) {
        this.size = Number(body.readBigUInt64BE(2));
        this.flags = body.readUInt16BE(10);
      } else if (type & 0x80000000) {
        throw new StrategyError('TRANSFER_FAILED', `NBD export refused (${type >>> 0}): ${body.toString()}`);
      }
    }
  }

  get readOnly(): boolean {
    return (this.flags & FLAG_READ_ONLY) !== 0;
  }

  read(offset: number, length: number): Promise<Buffer> {
    return this.request(CMD_READ, offset, length, length);
  }

  /** Writes `data` at `offset` (the export must be writable); resolves once the server acknowledged it. */
  async write(offset: number, data: Buffer): Promise<void> {
    if (this.readOnly) throw new StrategyError('TRANSFER_FAILED', 'NBD export is read-only');
    await this.request(CMD_WRITE, offset, data.length, 0, data);
  }

  /** Asks the server to make every acknowledged write durable (no-op when it has no flush). */
  async flush(): Promise<void> {
    if (this.flags & FLAG_SEND_FLUSH) await this.request(CMD_FLUSH, 0, 0, 0);
  }

  private request(type: number, offset: number, length: number, replyLength: number, payload?: Buffer): Promise<Buffer> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new StrategyError('TRANSFER_FAILED', 'NBD client closed'));
    const cookie = ++this.cookie;
    const req = Buffer.alloc(28);
    req.writeUInt32BE(REQUEST_MAGIC, 0);
    req.writeUInt16BE(0, 4);
    req.writeUInt16BE(type, 6);
    req.writeBigUInt64BE(cookie, 8);
    req.writeBigUInt64BE(BigInt(offset), 16);
    req.writeUInt32BE(length, 24);
    return new Promise((resolve, reject) => {
      this.pending.set(cookie, { length: replyLength, type, resolve, reject });
      this.stream.write(payload ? Buffer.concat([req, payload]) : req);
    });
  }

  private async replyLoop() {
    try {
      for (;;) {
        const r = await this.reader.read(16);
        if (r.readUInt32BE(0) !== SIMPLE_REPLY_MAGIC) throw new StrategyError('TRANSFER_FAILED', 'bad NBD reply');
        const error = r.readUInt32BE(4);
        const cookie = r.readBigUInt64BE(8);
        const p = this.pending.get(cookie);
        if (!p) throw new StrategyError('TRANSFER_FAILED', 'NBD reply for an unknown request');
        this.pending.delete(cookie);
        if (error) {
          p.reject(new StrategyError('TRANSFER_FAILED', `NBD ${p.type === CMD_READ ? 'read' : p.type === CMD_WRITE ? 'write' : 'flush'} error ${error}`));
          continue;
        }
        if (p.length === 0) {
          p.resolve(Buffer.alloc(0));
          continue;
        }
        // Own ArrayBuffer: the repository may hand the buffer to a worker thread.
        const data = await this.reader.read(p.length);
        const own = Buffer.allocUnsafeSlow(data.length);
        data.copy(own);
        p.resolve(own);
      }
    } catch (e) {
      this.failure = e as Error;
      for (const p of this.pending.values()) p.reject(e as Error);
      this.pending.clear();
    }
  }

  async close() {
    if (this.closed) return;
    this.closed = true;
    const req = Buffer.alloc(28);
    req.writeUInt32BE(REQUEST_MAGIC, 0);
    req.writeUInt16BE(CMD_DISC, 6);
    try {
      this.stream.end(req);
    } catch {
      /* already gone */
    }
    this.stream.destroy();
    // Do not wait for the reply loop: a channel of a dead SSH connection may never close.
    this.loop?.catch(() => {});
  }
}
