// Groups blobs into packs, uploads them (at most `uploads` at a time, so memory stays bounded),
// and writes index objects describing packs only once those packs are stored. Used by backup and
// by prune's repacking — one code path on every backend.
import type { Backend } from '../destinations/backend.ts';
import { encodeIndex, type ChunkIndex, type IndexedPack } from './chunk-index.ts';
import { layout, randomName } from './format.ts';
import { putSealed } from './objects.ts';
import { PackBuilder } from './pack.ts';

export class PackWriter {
  private builder: PackBuilder | null = null;
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

  async add(id: Buffer, blob: Buffer, rawLength: number, flags: number): Promise<void> {
    if (this.error) throw this.error;
    // Room for a full pack plus one maximal blob, so the buffer never grows in practice.
    this.builder ??= new PackBuilder(this.packSize + Math.max(blob.length, 4 << 20) + 64 * 1024, this.spare.pop());
    this.builder.add(id, blob, rawLength, flags);
    if (this.builder.size >= this.packSize) await this.closePack();
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
        const packed: IndexedPack = { packId: b.packId, size: bytes.length, entries: b.entries };
        this.bytesWritten += bytes.length;
        this.spare.push(b.buffer);
        this.packsWritten++;
        this.stored.push(packed);
        this.index?.addPack(packed);
        if (this.stored.length >= this.packsPerIndex) await this.writeIndex();
      })
      .catch((e) => {
        this.error ??= e;
      })
      .finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
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
    await this.closePack();
    while (this.inFlight.size) await Promise.race(this.inFlight);
    if (this.error) throw this.error;
    await this.writeIndex();
  }

  /** After a failure: wait for uploads in flight so nothing runs on after the caller returns. */
  async abandon(): Promise<void> {
    this.builder = null;
    while (this.inFlight.size) await Promise.race(this.inFlight);
  }
}
