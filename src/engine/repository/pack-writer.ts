// Groups blobs into packs, stores them, and writes index objects describing packs only once those
// packs are stored. Used by backup and by prune's repacking — one code path on every backend.
//
// Memory: where the backend can write an object piece by piece (openWriter: the file system),
// each blob goes straight to the pack's temporary object and no pack is ever held in memory —
// only the blobs being written. Otherwise (S3, Swift: one PUT per object) a pack is built in one
// buffer, and at most `uploads` packs upload while the next fills.
import type { Backend, ObjectWriter } from '../destinations/backend.ts';
import { encodeIndex, type ChunkIndex, type IndexedPack } from './chunk-index.ts';
import { layout, randomName } from './format.ts';
import { putSealed } from './objects.ts';
import { PACK_MAGIC, PackBuilder, packTail, type PackEntry } from './pack.ts';

/** A blob of an addRun: its bytes are the next `length` bytes of the run. */
export type RunBlob = { id: Buffer; length: number; rawLength: number; flags: number };

/** A pack written blob by blob into a backend's object writer. */
type StreamedPack = {
  packId: string;
  entries: PackEntry[];
  size: number;
  writer: Promise<ObjectWriter>;
  writes: Promise<void>[];
  /** Settles when the last write issued has: writes to one pack run one after the other. */
  last: Promise<unknown>;
};

export class PackWriter {
  private builder: PackBuilder | null = null;
  private streamed: StreamedPack | null = null;
  private inFlight = new Set<Promise<void>>();
  private stored: IndexedPack[] = [];
  private error: unknown = null;
  private spare: Buffer[] = [];
  /** Bytes of packs and index objects written. */
  bytesWritten = 0;
  packsWritten = 0;
  readonly indexObjects: string[] = [];

  constructor(
    private backend: Backend,
    private dataKey: Buffer,
    private packSize: number,
    /** Stored packs are added here as they land (so later chunks deduplicate against them). */
    private index: ChunkIndex | null,
    private uploads = 2,
    /** Write an index object every this many packs (and at the end). */
    private packsPerIndex = 256,
  ) {}

  /** Adds a blob; resolves once its bytes are handed over (the caller may then drop `blob`). */
  add(id: Buffer, blob: Buffer, rawLength: number, flags: number): Promise<void> {
    return this.addRun([{ id, length: blob.length, rawLength, flags }], blob);
  }

  /** Adds blobs lying one after the other in `bytes` (in one write where the backend streams);
   *  resolves once their bytes are handed over. */
  async addRun(blobs: RunBlob[], bytes: Buffer): Promise<void> {
    if (this.error) throw this.error;
    if (this.backend.openWriter) return this.addStreamed(blobs, bytes);
    let at = 0;
    for (const b of blobs) {
      // Room for a full pack plus one maximal blob, so the buffer never grows in practice.
      this.builder ??= new PackBuilder(this.packSize + Math.max(b.length, 4 << 20) + 64 * 1024, this.spare.pop());
      this.builder.add(b.id, bytes.subarray(at, at + b.length), b.rawLength, b.flags);
      at += b.length;
      if (this.builder.size >= this.packSize) await this.closePack();
    }
  }

  private async addStreamed(blobs: RunBlob[], bytes: Buffer): Promise<void> {
    let p = this.streamed;
    if (!p) {
      const packId = randomName(32);
      const writer = this.backend.openWriter!(layout.pack(packId));
      const magic = writer.then((w) => w.write(PACK_MAGIC, 0));
      p = this.streamed = { packId, entries: [], size: PACK_MAGIC.length, writer, writes: [magic], last: magic.catch(() => {}) };
    }
    // The offset is taken now, synchronously, so concurrent adds never overlap.
    const offset = p.size;
    for (const b of blobs) {
      p.entries.push({ id: b.id, offset: p.size, length: b.length, rawLength: b.rawLength, flags: b.flags });
      p.size += b.length;
    }
    const full = p.size >= this.packSize;
    if (full) this.streamed = null;
    // One write at a time per pack: the file system serialises writes to one file anyway (the
    // inode lock), and concurrent ones only spin on it (~0.5 CPU-s per GB measured under load).
    const pack = p;
    const write = p.last.then(() => pack.writer).then((w) => w.write(bytes, offset));
    p.last = write.catch(() => {});
    p.writes.push(write);
    write.catch(() => {}); // surfaced through `await write` below and the pack's commit
    await write;
    if (full) await this.commitStreamed(p);
  }

  private async commitStreamed(p: StreamedPack): Promise<void> {
    while (this.inFlight.size >= this.uploads) await Promise.race(this.inFlight);
    if (this.error) throw this.error;
    const c = (async () => {
      const w = await p.writer;
      const tail = packTail(this.dataKey, p.packId, p.entries);
      try {
        await Promise.all(p.writes);
        await w.write(tail, p.size);
        await w.commit();
      } catch (e) {
        await w.abort();
        throw e;
      }
      await this.landed({ packId: p.packId, size: p.size + tail.length, entries: p.entries });
    })()
      .catch((e) => {
        this.error ??= e;
      })
      .finally(() => this.inFlight.delete(c));
    this.inFlight.add(c);
  }

  private async closePack(): Promise<void> {
    const b = this.builder;
    this.builder = null;
    if (!b || b.entries.length === 0) return;
    while (this.inFlight.size >= this.uploads) await Promise.race(this.inFlight);
    if (this.error) throw this.error;
    const bytes = b.finish(this.dataKey);
    const p = this.backend
      .put(layout.pack(b.packId), bytes)
      .then(async () => {
        this.spare.push(b.buffer);
        await this.landed({ packId: b.packId, size: bytes.length, entries: b.entries });
      })
      .catch((e) => {
        this.error ??= e;
      })
      .finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
  }

  /** A pack is stored: count it, index it, and write an index object every packsPerIndex. */
  private async landed(packed: IndexedPack): Promise<void> {
    this.bytesWritten += packed.size;
    this.packsWritten++;
    this.stored.push(packed);
    this.index?.addPack(packed);
    if (this.stored.length >= this.packsPerIndex) await this.writeIndex();
  }

  private async writeIndex(): Promise<void> {
    if (this.stored.length === 0) return;
    const packs = this.stored;
    this.stored = [];
    const key = layout.indexObject(randomName());
    this.bytesWritten += await putSealed(this.backend, this.dataKey, key, encodeIndex(packs));
    this.indexObjects.push(key);
  }

  /** Stores the open pack, waits for all uploads, writes the last index object. */
  async finish(): Promise<void> {
    const s = this.streamed;
    this.streamed = null;
    if (s) await this.commitStreamed(s);
    await this.closePack();
    while (this.inFlight.size) await Promise.race(this.inFlight);
    if (this.error) throw this.error;
    await this.writeIndex();
  }

  /** After a failure: wait for uploads in flight so nothing runs on after the caller returns. */
  async abandon(): Promise<void> {
    this.builder = null;
    const s = this.streamed;
    this.streamed = null;
    if (s) {
      await Promise.allSettled(s.writes);
      await (await s.writer.catch(() => null))?.abort();
    }
    while (this.inFlight.size) await Promise.race(this.inFlight);
  }
}
