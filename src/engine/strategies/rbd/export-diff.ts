// Streaming parser of `rbd export-diff` output, format v1 (little-endian):
//   "rbd diff v1\n", then records: 'f' u32 len + from-snap, 't' u32 len + to-snap, 's' u64 size,
//   'w' u64 offset u64 length + data, 'z' u64 offset u64 length (zeroed), 'e' end.
// Data of 'w' records is handed out in pieces of at most `maxPiece` bytes so memory stays bounded.
import { StrategyError } from '../disk-source.ts';

export const DIFF_V1_HEADER = Buffer.from('rbd diff v1\n');

export type DiffRecord =
  | { type: 'from'; snap: string }
  | { type: 'to'; snap: string }
  | { type: 'size'; size: number }
  | { type: 'write'; offset: number; length: number; data: Buffer }
  | { type: 'zero'; offset: number; length: number };

/** Pull exact byte counts out of an async stream of chunks. */
export class ByteReader {
  private buf: Buffer = Buffer.alloc(0);
  private it: AsyncIterator<Buffer>;
  consumed = 0;
  constructor(source: AsyncIterable<Buffer>) {
    this.it = source[Symbol.asyncIterator]();
  }
  /** Exactly n bytes; throws on a premature end. */
  async read(n: number): Promise<Buffer> {
    while (this.buf.length < n) {
      const { value, done } = await this.it.next();
      if (done) throw new StrategyError('DIFF_TRUNCATED', `export-diff stream ended after ${this.consumed + this.buf.length} bytes`);
      this.buf = this.buf.length ? Buffer.concat([this.buf, value]) : value;
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    this.consumed += n;
    return out;
  }
  /** Read and drop everything left (the writer must see its output consumed to the end). */
  async drain(): Promise<void> {
    for (;;) {
      const { done } = await this.it.next();
      if (done) return;
    }
  }
}

export async function* parseExportDiff(source: AsyncIterable<Buffer>, maxPiece = 4 * 1024 * 1024): AsyncGenerator<DiffRecord> {
  const r = new ByteReader(source);
  const header = await r.read(DIFF_V1_HEADER.length);
  if (!header.equals(DIFF_V1_HEADER)) throw new StrategyError('DIFF_FORMAT', `not an rbd diff v1 stream: ${JSON.stringify(header.toString('latin1'))}`);
  for (;;) {
    const tag = String.fromCharCode((await r.read(1))[0]);
    switch (tag) {
      case 'f':
      case 't': {
        const len = (await r.read(4)).readUInt32LE(0);
        const snap = (await r.read(len)).toString();
        yield tag === 'f' ? { type: 'from', snap } : { type: 'to', snap };
        break;
      }
      case 's':
        yield { type: 'size', size: Number((await r.read(8)).readBigUInt64LE(0)) };
        break;
      case 'w': {
        const h = await r.read(16);
        const offset = Number(h.readBigUInt64LE(0));
        const length = Number(h.readBigUInt64LE(8));
        for (let done = 0; done < length; ) {
          const n = Math.min(maxPiece, length - done);
          // Copy: the reader's buffer is reused for the next chunk.
          yield { type: 'write', offset: offset + done, length: n, data: Buffer.from(await r.read(n)) };
          done += n;
        }
        break;
      }
      case 'z': {
        const h = await r.read(16);
        yield { type: 'zero', offset: Number(h.readBigUInt64LE(0)), length: Number(h.readBigUInt64LE(8)) };
        break;
      }
      case 'e':
        await r.drain();
        return;
      default:
        throw new StrategyError('DIFF_FORMAT', `unknown export-diff record ${JSON.stringify(tag)} at byte ${r.consumed - 1}`);
    }
  }
}

/** Encode a v1 diff (used by tests and labs to write known data with `rbd import-diff`). */
export function encodeExportDiff(records: DiffRecord[]): Buffer {
  const parts: Buffer[] = [DIFF_V1_HEADER];
  for (const rec of records) {
    if (rec.type === 'from' || rec.type === 'to') {
      const name = Buffer.from(rec.snap);
      const h = Buffer.alloc(5);
      h.write(rec.type === 'from' ? 'f' : 't', 0, 'latin1');
      h.writeUInt32LE(name.length, 1);
      parts.push(h, name);
    } else if (rec.type === 'size') {
      const h = Buffer.alloc(9);
      h.write('s', 0, 'latin1');
      h.writeBigUInt64LE(BigInt(rec.size), 1);
      parts.push(h);
    } else {
      const h = Buffer.alloc(17);
      h.write(rec.type === 'write' ? 'w' : 'z', 0, 'latin1');
      h.writeBigUInt64LE(BigInt(rec.offset), 1);
      h.writeBigUInt64LE(BigInt(rec.length), 9);
      parts.push(h);
      if (rec.type === 'write') parts.push(rec.data);
    }
  }
  parts.push(Buffer.from('e'));
  return Buffer.concat(parts);
}
