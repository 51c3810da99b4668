// The integration point between a backup strategy (where disk data comes from) and the repository
// (where it is chunked, deduplicated and stored). A strategy opens one DiskSource per disk of an
// instance; the repository reads it, then calls commit() once the backup is safely stored, and
// close() in every case. close() without commit() means "abort": the strategy rolls back what it
// created on the peer (new snapshot/overlay) and keeps what the next incremental needs.

export interface Extent {
  offset: number;
  length: number;
}

export interface DataExtent extends Extent {
  /** Exactly `length` bytes for [offset, offset + length), or null: the range reads as zeros. */
  data: Buffer | null;
}

export interface DiskSource {
  /** Disk name on the instance (e.g. "vda") or image name (e.g. "rbd/volume-…"). */
  readonly name: string;
  /** Virtual disk size in bytes. */
  readonly size: number;
  /**
   * 'full': the extents below describe the whole disk (anything not listed is zero).
   * 'incremental': they describe what changed since the parent backup (anything not listed is
   * unchanged); the repository builds the new disk as parent + these extents.
   */
  readonly mode: 'full' | 'incremental';
  /** Why an incremental was asked for but a full read is done (e.g. lost base snapshot). */
  readonly fallbackReason: string | null;
  /** Token the strategy needs for the next incremental; store it on the backup. */
  readonly checkpoint: string;

  /**
   * The data to store, ascending by offset, non-overlapping, each extent ≤ a few MiB. For a full
   * read: the allocated data of the whole disk; for an incremental: the changed data. Ranges found
   * to be all zeros come with `data: null` (store a hole, not bytes); in full mode they may also
   * simply be left out.
   */
  extents(): AsyncIterable<DataExtent>;

  /** Random access read, for sources that have it (NBD). */
  read?(offset: number, length: number): Promise<Buffer>;
  /** Allocated ranges of the whole disk (metadata only, no data read). */
  allocatedExtents?(): AsyncIterable<Extent>;
  /** Changed ranges relative to the parent backup (metadata only); null for a full read. */
  changedExtents?(): AsyncIterable<Extent> | null;

  /** Bytes of disk data read from the peer so far (for accounting and tests). */
  readonly bytesRead: number;

  /** The backup is stored: keep this snapshot/layer for the next incremental, drop the older one. */
  commit(): Promise<void>;
  /** Release everything; without a prior commit() this rolls back the new snapshot/overlay. */
  close(): Promise<void>;
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

/** Split extents into pieces of at most `max` bytes (keeps reads and buffers bounded). */
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
