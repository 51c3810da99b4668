// The chunk index: chunk id → (pack, offset, length). Backups write index objects (index/<name>)
// only after the packs they describe are stored; the repository loads them all at open.
// Index object plaintext (sealed, AAD "strongbox:index:<name>"):
//   "SBXIDX01" ‖ u32le pack count ‖ per pack: pack id (32) ‖ u64le pack size ‖ entry list
// where entry list is the pack trailer's encoding (pack.ts).
import { FLAG_ZSTD } from './format.ts';
import { decodeEntries, encodeEntries, type PackEntry } from './pack.ts';

export const INDEX_MAGIC = Buffer.from('SBXIDX01');

export type ChunkLocation = { pack: string; offset: number; length: number; rawLength: number; flags: number };
export type IndexedPack = { packId: string; size: number; entries: PackEntry[] };

export function encodeIndex(packs: IndexedPack[]): Buffer {
  const parts: Buffer[] = [INDEX_MAGIC];
  const n = Buffer.alloc(4);
  n.writeUInt32LE(packs.length);
  parts.push(n);
  for (const p of packs) {
    const head = Buffer.alloc(40);
    Buffer.from(p.packId, 'hex').copy(head, 0);
    head.writeBigUInt64LE(BigInt(p.size), 32);
    parts.push(head, encodeEntries(p.entries));
  }
  return Buffer.concat(parts);
}

export function decodeIndex(buf: Buffer): IndexedPack[] {
  if (!buf.subarray(0, 8).equals(INDEX_MAGIC)) throw new Error('not an index object');
  const n = buf.readUInt32LE(8);
  let o = 12;
  const packs: IndexedPack[] = [];
  for (let i = 0; i < n; i++) {
    const packId = buf.subarray(o, o + 32).toString('hex');
    const size = Number(buf.readBigUInt64LE(o + 32));
    const { entries, end } = decodeEntries(buf, o + 40);
    packs.push({ packId, size, entries });
    o = end;
  }
  if (o !== buf.length) throw new Error('trailing bytes after the last pack');
  return packs;
}

/** In-memory view of all loaded index objects. The first location seen for an id wins. */
export class ChunkIndex {
  private map = new Map<string, ChunkLocation>();
  /** pack id → size, for every pack some index names. */
  readonly packs = new Map<string, number>();
  /** index object name → the packs it describes. */
  readonly objects = new Map<string, IndexedPack[]>();

  addObject(name: string, packs: IndexedPack[]): void {
    this.objects.set(name, packs);
    for (const p of packs) this.addPack(p);
  }

  addPack(p: IndexedPack): void {
    this.packs.set(p.packId, p.size);
    for (const e of p.entries) {
      const k = e.id.toString('hex');
      if (!this.map.has(k)) this.map.set(k, { pack: p.packId, offset: e.offset, length: e.length, rawLength: e.rawLength, flags: e.flags });
    }
  }

  has(id: Buffer): boolean {
    return this.map.has(id.toString('hex'));
  }

  get(id: Buffer): ChunkLocation | undefined {
    return this.map.get(id.toString('hex'));
  }

  get size(): number {
    return this.map.size;
  }

  isCompressed(loc: ChunkLocation): boolean {
    return (loc.flags & FLAG_ZSTD) !== 0;
  }
}
