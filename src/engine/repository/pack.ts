// Pack objects: many encrypted chunk blobs in one object (data/<2 hex>/<pack id>), so a TB is
// ~65 000 PUTs of 16 MiB rather than a million small ones. Layout:
//   "SBXPACK1" ‖ blob* ‖ trailer ‖ u32le trailer length ‖ "SBXPEND1"
// blob    = nonce(12) ‖ AES-256-GCM(zstd or raw chunk) ‖ tag(16), AAD = chunk id
// trailer = sealed(entry list) with AAD "strongbox:pack:<pack id>" — a pack describes itself, so
//           the index can be rebuilt from the packs alone.
import type { Backend } from '../destinations/backend.ts';
import { ID_BYTES } from './format.ts';
import { layout, randomName } from './format.ts';
import { open, seal } from './keys.ts';

export const PACK_MAGIC = Buffer.from('SBXPACK1');
export const PACK_END = Buffer.from('SBXPEND1');
export const ENTRY_BYTES = ID_BYTES + 4 + 4 + 4 + 1;

export type PackEntry = { id: Buffer; offset: number; length: number; rawLength: number; flags: number };

export function encodeEntries(entries: PackEntry[]): Buffer {
  const out = Buffer.alloc(4 + entries.length * ENTRY_BYTES);
  out.writeUInt32LE(entries.length, 0);
  let o = 4;
  for (const e of entries) {
    e.id.copy(out, o);
    out.writeUInt32LE(e.offset, o + 32);
    out.writeUInt32LE(e.length, o + 36);
    out.writeUInt32LE(e.rawLength, o + 40);
    out.writeUInt8(e.flags, o + 44);
    o += ENTRY_BYTES;
  }
  return out;
}

export function decodeEntries(buf: Buffer, at = 0): { entries: PackEntry[]; end: number } {
  const n = buf.readUInt32LE(at);
  let o = at + 4;
  if (o + n * ENTRY_BYTES > buf.length) throw new Error('entry list runs past the end');
  const entries: PackEntry[] = new Array(n);
  for (let i = 0; i < n; i++) {
    entries[i] = {
      id: Buffer.from(buf.subarray(o, o + 32)),
      offset: buf.readUInt32LE(o + 32),
      length: buf.readUInt32LE(o + 36),
      rawLength: buf.readUInt32LE(o + 40),
      flags: buf.readUInt8(o + 44),
    };
    o += ENTRY_BYTES;
  }
  return { entries, end: o };
}

export function trailerAad(packId: string): Buffer {
  return Buffer.from(`strongbox:pack:${packId}`);
}

/** Builds one pack in one preallocated buffer (blobs are copied in as they come, so each blob's
 *  own memory is free at once and no concatenation doubles the pack). */
export class PackBuilder {
  readonly packId = randomName(32);
  readonly entries: PackEntry[] = [];
  private buf: Buffer;
  size = PACK_MAGIC.length;

  /** `reuse`: a buffer of a pack already stored, recycled (big buffers freed and reallocated make
   *  glibc raise its mmap threshold and keep freed memory around). */
  constructor(capacity: number, reuse?: Buffer) {
    this.buf = reuse && reuse.length >= capacity ? reuse : Buffer.allocUnsafeSlow(capacity);
    PACK_MAGIC.copy(this.buf, 0);
  }

  add(id: Buffer, blob: Buffer, rawLength: number, flags: number): void {
    if (this.size + blob.length > this.buf.length) {
      const bigger = Buffer.allocUnsafeSlow(Math.max(this.buf.length * 2, this.size + blob.length + 4096));
      this.buf.copy(bigger, 0, 0, this.size);
      this.buf = bigger;
    }
    this.entries.push({ id, offset: this.size, length: blob.length, rawLength, flags });
    blob.copy(this.buf, this.size);
    this.size += blob.length;
  }

  /** The whole backing buffer, to recycle once the pack is stored. */
  get buffer(): Buffer {
    return this.buf;
  }

  finish(dataKey: Buffer): Buffer {
    const tail = packTail(dataKey, this.packId, this.entries);
    const end = this.size + tail.length;
    if (end > this.buf.length) {
      const bigger = Buffer.allocUnsafeSlow(end);
      this.buf.copy(bigger, 0, 0, this.size);
      this.buf = bigger;
    }
    tail.copy(this.buf, this.size);
    return this.buf.subarray(0, end);
  }
}

/** What follows the last blob: sealed trailer ‖ u32le trailer length ‖ end marker. */
export function packTail(dataKey: Buffer, packId: string, entries: PackEntry[]): Buffer {
  const trailer = seal(dataKey, encodeEntries(entries), trailerAad(packId));
  const out = Buffer.allocUnsafe(trailer.length + 12);
  trailer.copy(out, 0);
  out.writeUInt32LE(trailer.length, trailer.length);
  PACK_END.copy(out, trailer.length + 4);
  return out;
}

/** Reads a pack's own entry list (verify --read-data, index rebuild). Throws on any damage. */
export async function readPackTrailer(backend: Backend, packId: string, size: number, dataKey: Buffer): Promise<PackEntry[]> {
  const key = layout.pack(packId);
  const tail = await backend.getRange(key, size - 12, 12);
  if (tail.length !== 12 || !tail.subarray(4).equals(PACK_END)) throw new Error('pack end marker missing');
  const tlen = tail.readUInt32LE(0);
  if (tlen > size - 12 - PACK_MAGIC.length) throw new Error('trailer length out of range');
  const sealed = await backend.getRange(key, size - 12 - tlen, tlen);
  const plain = open(dataKey, sealed, trailerAad(packId));
  return decodeEntries(plain).entries;
}
