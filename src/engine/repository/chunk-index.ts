// The chunk index: chunk id → (pack, offset, length). Backups write index objects (index/<name>)
// only after the packs they describe are stored; the repository loads them all at open.
// Index object plaintext (sealed, AAD "strongbox:index:<name>"):
//   "SBXIDX01" ‖ u32le pack count ‖ per pack: pack id (32) ‖ u64le pack size ‖ entry list
// where entry list is the pack trailer's encoding (pack.ts).
import { FLAG_ZSTD, ID_BYTES } from './format.ts';
import { ENTRY_BYTES, encodeEntries, type PackEntry } from './pack.ts';

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

/** The pack listings of an index object's plaintext, each entry list left encoded (a view of `buf`).
 *  Throws on any inconsistency, before anything is used. */
export function parseIndex(buf: Buffer): PackListing[] {
  if (buf.length < 12 || !buf.subarray(0, 8).equals(INDEX_MAGIC)) throw new Error('not an index object');
  const n = buf.readUInt32LE(8);
  let o = 12;
  const packs: PackListing[] = [];
  for (let i = 0; i < n; i++) {
    if (o + 44 > buf.length) throw new Error('pack listing runs past the end');
    const packId = buf.subarray(o, o + 32).toString('hex');
    const size = Number(buf.readBigUInt64LE(o + 32));
    const count = buf.readUInt32LE(o + 40);
    const end = o + 44 + count * ENTRY_BYTES;
    if (end > buf.length) throw new Error('entry list runs past the end');
    packs.push({ packId, size, list: buf.subarray(o + 44, end) });
    o = end;
  }
  if (o !== buf.length) throw new Error('trailing bytes after the last pack');
  return packs;
}

export function decodeIndex(buf: Buffer): IndexedPack[] {
  return parseIndex(buf).map((p) => ({ packId: p.packId, size: p.size, entries: listEntries(p.list) }));
}

/** A pack's entries as stored: count × ENTRY_BYTES in the entry-list encoding (pack.ts), no count. */
type PackListing = { packId: string; size: number; list: Buffer };

function listEntries(list: Buffer): PackEntry[] {
  const out: PackEntry[] = new Array(list.length / ENTRY_BYTES);
  for (let i = 0, o = 0; o < list.length; i++, o += ENTRY_BYTES) {
    out[i] = { id: Buffer.from(list.subarray(o, o + ID_BYTES)), offset: list.readUInt32LE(o + 32), length: list.readUInt32LE(o + 36), rawLength: list.readUInt32LE(o + 40), flags: list[o + 44] };
  }
  return out;
}

/**
 * In-memory view of all loaded index objects, in ~50 bytes a chunk (a Map of hex ids took ~350):
 * each pack's entries stay in their stored encoding (45 bytes each, a view of the index object's
 * plaintext), numbered one after the other across packs, and an open-addressing table of those
 * numbers (Uint32Array, load ≤ 3/4) finds an id from its first four bytes — ids are HMAC outputs,
 * so they spread evenly. The first location seen for an id wins.
 */
export class ChunkIndex {
  /** pack id → size, for every pack some index names. */
  readonly packs = new Map<string, number>();
  /** index object name → the packs it lists. */
  readonly objects = new Map<string, { packId: string; size: number }[]>();
  /** Entry lists in the order added; `first[k]` is the number of list k's first entry. */
  private lists: { packId: string; list: Buffer }[] = [];
  private first: number[] = [];
  private listOf = new Map<string, number>();
  private entryCount = 0;
  /** Entry number + 1 per slot; 0 = empty. */
  private slots = new Uint32Array(1024);
  private ids = 0;

  addObject(name: string, plain: Buffer): void {
    const listings = parseIndex(plain);
    this.objects.set(name, listings.map((p) => ({ packId: p.packId, size: p.size })));
    for (const p of listings) this.addListing(p);
  }

  addPack(p: IndexedPack): void {
    this.addListing({ packId: p.packId, size: p.size, list: encodeEntries(p.entries).subarray(4) });
  }

  private addListing(p: PackListing): void {
    this.packs.set(p.packId, p.size);
    if (this.listOf.has(p.packId)) return; // listed again (same pack, same entries)
    const n = p.list.length / ENTRY_BYTES;
    this.listOf.set(p.packId, this.lists.length);
    this.lists.push({ packId: p.packId, list: p.list });
    this.first.push(this.entryCount);
    for (let i = 0; i < n; i++) {
      if ((this.ids + 1) * 4 > this.slots.length * 3) this.grow();
      const e = this.entryCount + i;
      const at = this.find(p.list, i * ENTRY_BYTES);
      if (this.slots[at] === 0) {
        this.slots[at] = e + 1;
        this.ids++;
      }
    }
    this.entryCount += n;
  }

  /** The slot holding `id` (in `buf` at `o`), or the empty slot where it would go. */
  private find(buf: Buffer, o: number): number {
    const mask = this.slots.length - 1;
    for (let at = buf.readUInt32LE(o) & mask; ; at = (at + 1) & mask) {
      const v = this.slots[at];
      if (v === 0) return at;
      const { list, offset } = this.entry(v - 1);
      if (list.compare(buf, o, o + ID_BYTES, offset, offset + ID_BYTES) === 0) return at;
    }
  }

  private grow(): void {
    const old = this.slots;
    this.slots = new Uint32Array(old.length * 2);
    const mask = this.slots.length - 1;
    for (const v of old) {
      if (v === 0) continue;
      const { list, offset } = this.entry(v - 1);
      let at = list.readUInt32LE(offset) & mask;
      while (this.slots[at] !== 0) at = (at + 1) & mask;
      this.slots[at] = v;
    }
  }

  /** Where entry number e lies: its list (binary search over the lists' first numbers). */
  private entry(e: number): { k: number; list: Buffer; offset: number } {
    let lo = 0;
    let hi = this.first.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.first[mid] <= e) lo = mid;
      else hi = mid - 1;
    }
    return { k: lo, list: this.lists[lo].list, offset: (e - this.first[lo]) * ENTRY_BYTES };
  }

  has(id: Buffer): boolean {
    return id.length === ID_BYTES && this.slots[this.find(id, 0)] !== 0;
  }

  get(id: Buffer): ChunkLocation | undefined {
    if (id.length !== ID_BYTES) return undefined;
    const v = this.slots[this.find(id, 0)];
    if (v === 0) return undefined;
    const { k, list, offset: o } = this.entry(v - 1);
    return { pack: this.lists[k].packId, offset: list.readUInt32LE(o + 32), length: list.readUInt32LE(o + 36), rawLength: list.readUInt32LE(o + 40), flags: list[o + 44] };
  }

  /** A pack's entries as its (first) listing gives them. */
  entries(packId: string): PackEntry[] | undefined {
    const k = this.listOf.get(packId);
    return k === undefined ? undefined : listEntries(this.lists[k].list);
  }

  /** Distinct chunk ids. */
  get size(): number {
    return this.ids;
  }

  isCompressed(loc: ChunkLocation): boolean {
    return (loc.flags & FLAG_ZSTD) !== 0;
  }
}
