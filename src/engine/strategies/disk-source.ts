// What a backup strategy hands to the repository. The repository's own interface
// (`src/engine/repository/disk-source.ts`, branch repo-core: size, random `read`, optional
// `allocatedExtents`, `close`) is the contract; strategies extend it with what they know about the
// disk's history (changed extents since the parent backup, a checkpoint for the next incremental)
// and with a streaming view of the data, which is how RBD diffs arrive.
//
// Lifecycle: open (the strategy snapshots; `checkpoint` is known from here) → the repository reads
// → the backup record naming `checkpoint` is made durable → commit() (keep this snapshot/layer for
// the next incremental, drop the older one) → close() in every case. close() without commit() rolls
// back: the new snapshot/checkpoint goes, the parent's stays. Committing only after the record is
// durable means no next run can diff from a base whose data never reached a recorded backup.
import type { DiskSource, Extent } from '../repository/disk-source.ts';
import type { DiskInput } from '../repository/backup.ts';

export type { Extent };

export interface DataExtent extends Extent {
  /** Exactly `length` bytes for [offset, offset + length), or null: the range reads as zeros. */
  data: Buffer | null;
}

export interface StrategyDiskSource extends DiskSource {
  /** Disk name on the instance ("vda") or image ("pool/volume-…"); matches disks across backups. */
  readonly name: string;
  readonly size: number;
  /**
   * 'full': read the whole disk. 'incremental': `changedExtents()` lists what differs from the
   * parent backup (everything else is unchanged).
   */
  readonly mode: 'full' | 'incremental';
  /** Why an incremental was asked for but a full read is done (lost base snapshot…): record it. */
  readonly fallbackReason: string | null;
  /** What the next incremental of this disk needs (known once open); store it on the backup record. */
  readonly checkpoint: string;
  /** Bytes of disk data read from the peer so far. */
  readonly bytesRead: number;

  read(offset: number, length: number): Promise<Buffer>;
  allocatedExtents(): Promise<Extent[] | null>;
  /** Changed ranges relative to the parent backup, sorted; null in full mode. */
  changedExtents(): Promise<Extent[] | null>;
  /**
   * The same data as a stream, ascending and non-overlapping: in full mode the allocated data, in
   * incremental mode the changes. `data: null` marks ranges that read as zeros (store a hole).
   */
  extents(): AsyncIterable<DataExtent>;

  commit(): Promise<void>;
  close(): Promise<void>;
}

/** The repository's input for one disk (see runBackup in repo-core). */
export async function toDiskInput(source: StrategyDiskSource): Promise<DiskInput> {
  const changed = source.mode === 'incremental' ? await source.changedExtents() : null;
  return { name: source.name, source, ...(changed ? { changedExtents: changed } : {}) };
}

/** A typed failure of a strategy; `reason` is safe to record on the backup (no secrets). */
export class StrategyError extends Error {
  constructor(
    readonly code: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`${code}: ${reason}`, options);
    this.name = 'StrategyError';
  }
}

/** Split an extent into pieces of at most `max` bytes (keeps reads and buffers bounded). */
export function* splitExtent(e: Extent, max: number): Generator<Extent> {
  for (let o = e.offset; o < e.offset + e.length; o += max) {
    yield { offset: o, length: Math.min(max, e.offset + e.length - o) };
  }
}

export function isZero(buf: Buffer): boolean {
  // Compare in 64 KiB slices against a shared zero page: fast and allocation-free.
  for (let i = 0; i < buf.length; i += ZERO.length) {
    const n = Math.min(ZERO.length, buf.length - i);
    if (buf.compare(ZERO, 0, n, i, i + n) !== 0) return false;
  }
  return true;
}
const ZERO = Buffer.alloc(64 * 1024);

/** Does [start, end) overlap any of the sorted extents? (binary search) */
export function overlaps(sorted: Extent[], start: number, end: number): boolean {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid].offset + sorted[mid].length <= start) lo = mid + 1;
    else hi = mid;
  }
  return lo < sorted.length && sorted[lo].offset < end;
}
