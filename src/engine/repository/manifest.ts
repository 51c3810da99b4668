// A disk manifest (manifests/<name>): the disk's size and its ordered chunk list. Slot i covers
// bytes [i·chunkSize, min((i+1)·chunkSize, size)); an all-zero id marks a zero chunk (never
// stored), so zero ranges are the runs of zero slots. Plaintext layout:
//   "SBXMAN01" ‖ u64le size ‖ u32le chunk size ‖ u32le slot count ‖ slot count × 32-byte id
import { ID_BYTES } from './format.ts';
import type { Extent } from './disk-source.ts';

export const MANIFEST_MAGIC = Buffer.from('SBXMAN01');

export class Manifest {
  constructor(
    readonly size: number,
    readonly chunkSize: number,
    /** 32 bytes per slot; zero = zero chunk. */
    readonly ids: Buffer,
  ) {}

  static empty(size: number, chunkSize: number): Manifest {
    return new Manifest(size, chunkSize, Buffer.alloc(Math.ceil(size / chunkSize) * ID_BYTES));
  }

  get count(): number {
    return this.ids.length / ID_BYTES;
  }

  id(i: number): Buffer | null {
    const s = this.ids.subarray(i * ID_BYTES, (i + 1) * ID_BYTES);
    for (let k = 0; k < ID_BYTES; k++) if (s[k] !== 0) return s;
    return null;
  }

  setId(i: number, id: Buffer | null): void {
    if (id) id.copy(this.ids, i * ID_BYTES);
    else this.ids.fill(0, i * ID_BYTES, (i + 1) * ID_BYTES);
  }

  chunkLength(i: number): number {
    return Math.min(this.chunkSize, this.size - i * this.chunkSize);
  }

  zeroRanges(): Extent[] {
    const out: Extent[] = [];
    for (let i = 0; i < this.count; i++) {
      if (this.id(i)) continue;
      const off = i * this.chunkSize;
      const last = out[out.length - 1];
      if (last && last.offset + last.length === off) last.length += this.chunkLength(i);
      else out.push({ offset: off, length: this.chunkLength(i) });
    }
    return out;
  }

  encode(): Buffer {
    const head = Buffer.alloc(24);
    MANIFEST_MAGIC.copy(head, 0);
    head.writeBigUInt64LE(BigInt(this.size), 8);
    head.writeUInt32LE(this.chunkSize, 16);
    head.writeUInt32LE(this.count, 20);
    return Buffer.concat([head, this.ids]);
  }

  static decode(buf: Buffer): Manifest {
    if (!buf.subarray(0, 8).equals(MANIFEST_MAGIC)) throw new Error('not a manifest');
    const size = Number(buf.readBigUInt64LE(8));
    const chunkSize = buf.readUInt32LE(16);
    const count = buf.readUInt32LE(20);
    if (count !== Math.ceil(size / chunkSize) || buf.length !== 24 + count * ID_BYTES) throw new Error('inconsistent slot count');
    return new Manifest(size, chunkSize, Buffer.from(buf.subarray(24)));
  }
}
