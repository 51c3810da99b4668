// A disk source over a byte stream of known size (an HTTP download): read front to back, never
// seeking back. The backup asks for chunks in increasing offsets, several at once; reads are
// queued and served in call order, a gap is skipped by discarding bytes. An `onEnd` check runs
// on the last byte, before the last chunk is handed over, so a failed check (a checksum)
// fails the backup before its record is written.
import type { Readable } from 'node:stream';
import type { DiskSource } from './disk-source.ts';

export class StreamDiskSource implements DiskSource {
  #iterator: AsyncIterator<Buffer>;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #position = 0;
  #queue: Promise<unknown> = Promise.resolve();
  #ended = false;

  constructor(
    private readonly stream: Readable,
    readonly size: number,
    private readonly opts: { name?: string; onData?: (chunk: Buffer) => void; onEnd?: () => void } = {},
  ) {
    this.#iterator = stream[Symbol.asyncIterator]();
  }

  read(offset: number, length: number): Promise<Buffer> {
    const next = this.#queue.then(() => this.#read(offset, length));
    this.#queue = next.catch(() => {});
    return next;
  }

  async #read(offset: number, length: number): Promise<Buffer> {
    const name = this.opts.name ?? 'stream';
    if (offset < this.#position) throw new Error(`${name}: read at ${offset} behind the stream position ${this.#position}`);
    const n = Math.max(0, Math.min(length, this.size - offset));
    if (offset > this.#position) await this.#take(offset - this.#position, null);
    const out = Buffer.allocUnsafeSlow(n);
    await this.#take(n, out);
    if (this.#position === this.size && !this.#ended) {
      this.#ended = true;
      // Bytes beyond the announced size mean the size was wrong: not the image we think it is.
      const more = this.#pendingBytes > 0 || !(await this.#iterator.next()).done;
      if (more) throw new Error(`${name}: more bytes than the announced ${this.size}`);
      this.opts.onEnd?.();
    }
    return out;
  }

  /** Moves `n` bytes from the stream into `into` (or discards them). */
  async #take(n: number, into: Buffer | null): Promise<void> {
    let done = 0;
    while (done < n) {
      if (this.#pendingBytes === 0) {
        const r = await this.#iterator.next();
        if (r.done) throw new Error(`${this.opts.name ?? 'stream'}: ended at ${this.#position} of ${this.size} bytes`);
        const chunk = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value as Uint8Array);
        this.opts.onData?.(chunk);
        this.#pending.push(chunk);
        this.#pendingBytes += chunk.length;
        continue;
      }
      const head = this.#pending[0]!;
      const k = Math.min(head.length, n - done);
      if (into) head.copy(into, done, 0, k);
      if (k === head.length) this.#pending.shift();
      else this.#pending[0] = head.subarray(k);
      this.#pendingBytes -= k;
      this.#position += k;
      done += k;
    }
  }

  async close(): Promise<void> {
    if (!this.stream.destroyed) this.stream.destroy();
    await this.#iterator.return?.().catch(() => {});
  }
}
