// The archiver: turns disk sources into one backup (packs → index objects → manifests → record).
//
// Per disk, every chunk slot is classified without reading when possible:
//   - outside the source's allocated extents     → zero chunk (not read, not stored);
//   - with a parent and `changedExtents`, a slot no changed extent touches → the parent's chunk id
//     (not read: the disk is a full point in time all the same, restore never replays a chain);
//   - otherwise read (by the worker itself when the disk is a local file), zero-checked and hashed
//     in a worker, deduplicated against the index, and only if new compressed + encrypted
//     (worker) and added to a pack. Consecutive chunks travel to the workers in batches.
// At most ~8 MiB of chunks are between read and pack at any time, and at most two packs are
// uploading, so memory stays bounded whatever the disk size.
import type { BackupRecord, DiskRecord } from './backup-record.ts';
import { encodeRecord } from './backup-record.ts';
import type { DiskSource, Extent } from './disk-source.ts';
import { mergeExtents } from './disk-source.ts';
import { RepositoryError } from './errors.ts';
import { ID_BYTES, SEAL_OVERHEAD, layout, newBackupId, randomName } from './format.ts';
import { Manifest } from './manifest.ts';
import { putSealed } from './objects.ts';
import { PackWriter, type RunBlob } from './pack-writer.ts';
import { BufferPool } from './buffer-pool.ts';
import type { Repository } from './repository.ts';

/** One disk to back up. */
export type DiskInput = {
  /** Stable name of the disk (device name, volume id); matches disks to the parent backup's. */
  name: string;
  source: DiskSource;
  /** Extents changed since `BackupOptions.parent` (e.g. from `rbd diff`, CBT or checksums). Only
   *  chunks touching them are read; all others are taken from the parent's manifest. Without it
   *  every allocated chunk is read (and deduplicated). Requires a parent. */
  changedExtents?: Extent[];
};

export type BackupProgress = {
  /** Logical bytes processed over all disks, and their total. */
  bytesDone: number;
  bytesTotal: number;
  /** Index of the disk being processed. */
  disk: number;
  readBytes: number;
  storedBytes: number;
};

export type BackupOptions = {
  tag?: string;
  /** Id of the backup the changed extents are relative to. */
  parent?: string;
  /** Instance metadata stored in the backup record (JSON-serialisable). */
  metadata?: unknown;
  /** Called at most every ~100 ms, and once at the end. */
  onProgress?: (p: BackupProgress) => void;
  /** Aborting leaves no visible backup; its leftovers go at the next prune. */
  signal?: AbortSignal;
  /** The backup's point in time (record `time`, id, retention); default now. For importing
   *  backups taken elsewhere, and for tests of retention. */
  time?: Date;
};

export type BackupResult = {
  id: string;
  record: BackupRecord;
  /** Sum of disk sizes. */
  logicalBytes: number;
  /** Bytes read from the sources. */
  readBytes: number;
  /** Bytes added to the destination (packs, index objects, manifests, record). */
  storedBytes: number;
  /** Plain bytes of chunks new to the repository. */
  newBytes: number;
  zeroBytes: number;
  parentBytes: number;
  newChunks: number;
  dedupChunks: number;
  seconds: number;
};

export async function runBackup(repo: Repository, disks: DiskInput[], opts: BackupOptions): Promise<BackupResult> {
  const started = Date.now();
  const time = opts.time ?? new Date(started);
  if (Number.isNaN(time.getTime())) throw RepositoryError.invalid('the backup time is not a valid date');
  if (disks.length === 0) throw RepositoryError.invalid('a backup needs at least one disk');
  if (!opts.parent && disks.some((d) => d.changedExtents)) throw RepositoryError.invalid('changed extents need a parent backup');
  if (opts.signal?.aborted) throw RepositoryError.aborted();

  void repo.pool; // the worker threads boot while the lock is taken and the index read
  const lock = await repo.lock('shared', 'backup', opts.signal);
  // Stop at the caller's abort, or once the lock could not be refreshed (locks.ts).
  const signal = opts.signal ? AbortSignal.any([opts.signal, lock.signal]) : lock.signal;
  const writer = new PackWriter(repo.backend, repo.keys.dataKey, repo.config.packSize, null);
  try {
    // Under the shared lock no prune runs: the index read now stays true until we finish.
    await repo.loadIndex();
    const parent = opts.parent ? await repo.getBackup(opts.parent) : null;
    const id = newBackupId(time);
    const bytesTotal = disks.reduce((s, d) => s + d.source.size, 0);
    const totals = { done: 0, read: 0, stored: 0, newBytes: 0, zero: 0, parentBytes: 0, newChunks: 0, dedupChunks: 0 };
    let lastReport = 0;
    const report = (disk: number, force = false) => {
      if (!opts.onProgress) return;
      const now = Date.now();
      if (!force && now - lastReport < 100) return;
      lastReport = now;
      opts.onProgress({ bytesDone: totals.done, bytesTotal, disk, readBytes: totals.read, storedBytes: totals.stored });
    };
    // Chunks that are new in this backup but not yet in a stored pack (id hex).
    const pending = new Set<string>();
    const diskRecords: DiskRecord[] = [];
    const manifests: { key: string; manifest: Manifest }[] = [];

    for (let d = 0; d < disks.length; d++) {
      const input = disks[d];
      const before = { ...totals };
      let parentManifest: Manifest | null = null;
      if (parent && input.changedExtents) {
        const pd = parent.disks.find((x) => x.name === input.name) ?? parent.disks[d];
        if (pd) parentManifest = await repo.readManifest(pd.manifest);
      }
      const manifest = await backupDisk(repo, input, parentManifest, writer, pending, totals, () => report(d), signal);
      const key = layout.manifest(randomName());
      manifests.push({ key, manifest });
      diskRecords.push({
        name: input.name,
        size: input.source.size,
        chunkSize: manifest.chunkSize,
        manifest: key,
        readBytes: totals.read - before.read,
        zeroBytes: totals.zero - before.zero,
        parentBytes: totals.parentBytes - before.parentBytes,
        newBytes: totals.newBytes - before.newBytes,
        storedBytes: totals.stored - before.stored,
      });
    }

    // Order is the crash-safety argument: packs + index, then manifests, then the record.
    await writer.finish();
    let metaBytes = 0;
    lock.check(opts.signal);
    for (const m of manifests) metaBytes += await putSealed(repo.backend, repo.keys.dataKey, m.key, m.manifest.encode());
    const record: BackupRecord = {
      version: 1,
      id,
      time: time.toISOString(),
      finished: new Date().toISOString(),
      tag: opts.tag ?? null,
      parent: opts.parent ?? null,
      disks: diskRecords,
      metadata: opts.metadata ?? null,
    };
    lock.check(opts.signal); // the record is the one write that must never follow a lost lock
    metaBytes += await putSealed(repo.backend, repo.keys.dataKey, layout.backup(id), encodeRecord(record));
    report(disks.length - 1, true);
    return {
      id,
      record,
      logicalBytes: bytesTotal,
      readBytes: totals.read,
      storedBytes: writer.bytesWritten + metaBytes,
      newBytes: totals.newBytes,
      zeroBytes: totals.zero,
      parentBytes: totals.parentBytes,
      newChunks: totals.newChunks,
      dedupChunks: totals.dedupChunks,
      seconds: (Date.now() - started) / 1000,
    };
  } catch (e) {
    await writer.abandon();
    throw e;
  } finally {
    await lock.release().catch(() => {});
  }
}

type Totals = { done: number; read: number; stored: number; newBytes: number; zero: number; parentBytes: number; newChunks: number; dedupChunks: number };

async function backupDisk(
  repo: Repository,
  input: DiskInput,
  parent: Manifest | null,
  writer: PackWriter,
  pending: Set<string>,
  totals: Totals,
  progress: () => void,
  signal: AbortSignal | undefined,
): Promise<Manifest> {
  const { source } = input;
  const cs = repo.config.chunkSize;
  const manifest = Manifest.empty(source.size, cs);
  const allocated = (await source.allocatedExtents?.()) ?? null;
  const inAllocated = allocated ? overlapTester(mergeExtents(allocated)) : () => true;
  const usable = parent && parent.chunkSize === cs ? parent : null;
  const inChanged = usable ? overlapTester(mergeExtents(input.changedExtents ?? [])) : () => true;
  const pool = repo.pool;
  // Consecutive chunks to read go to a worker in batches of up to BATCH_BYTES: one read, one
  // message and one wake-up per batch instead of per chunk. Each batch's buffer leaves `at`
  // bytes free before the chunks, so the blobs sealed over it never reach a chunk not yet sealed.
  const perBatch = Math.max(1, Math.floor(BATCH_BYTES / cs));
  const at = SEAL_OVERHEAD * perBatch;
  // ~8 MiB of chunks between read and pack: deep enough to hide read and message latency behind
  // the workers, small enough to keep memory flat.
  const inflightLimit = Math.max(4, Math.floor((8 << 20) / (perBatch * cs)));
  const buffers = new BufferPool(at + perBatch * cs, inflightLimit);

  // Share of recent hashed chunks that were new (moving average over ~16). Above SPECULATE_ABOVE a
  // batch is sealed in the same worker round trip as its hashes: half the messages and wake-ups,
  // at the price of wasted seals for the few duplicates. A first backup stays there; a backup of a
  // mostly known disk (day2 without changed extents, a clone) hashes first.
  let newShare = 1;
  let failure: unknown = null;
  // Batches in flight, and the loop's wake-up when one finishes. (Not Promise.race over the
  // running set: each race adds a reaction to every pending batch.)
  let running = 0;
  let wake: (() => void) | null = null;
  const oneFinished = () => new Promise<void>((r) => (wake = r));

  type Batch = { first: number; offset: number; lengths: number[]; span: number };
  const processBatch = async ({ first, offset, lengths, span }: Batch) => {
    let buf = buffers.take(at + span);
    try {
      if (source.fd === undefined) {
        const into = buf.subarray(at);
        const got = await source.read(offset, span, into);
        if (got.length !== span) throw new Error(`${input.name}: short read at ${offset}`);
        if (got.buffer !== into.buffer || got.byteOffset !== into.byteOffset) got.copy(into);
      }
      const read = source.fd === undefined ? undefined : { fd: source.fd, position: offset };
      const speculate = newShare >= SPECULATE_ABOVE;
      let r = await pool.chunks(buf, { at, lengths, read, seal: speculate ? 'all' : 'none' }).catch((e: Error) => {
        throw Object.assign(new Error(`${input.name}: ${e.message}`), { cause: e });
      });
      buf = r.buf;
      totals.read += span;
      const fresh: number[] = [];
      for (let k = 0; k < lengths.length; k++) {
        if (r.zero[k]) {
          totals.zero += lengths[k];
          continue;
        }
        const id = r.ids.subarray(k * ID_BYTES, (k + 1) * ID_BYTES);
        manifest.setId(first + k, id);
        if (isNew(id)) fresh.push(k);
      }
      if (!speculate && fresh.length) {
        r = await pool.chunks(buf, { at, lengths, ids: r.ids, seal: fresh });
        buf = r.buf;
      }
      // The blobs to store, as runs lying one after the other in `buf`: one pack write per run.
      const keep = new Set(fresh);
      const stores: Promise<void>[] = [];
      let run: { start: number; end: number; blobs: RunBlob[] } | null = null;
      const flush = () => run && stores.push(writer.addRun(run.blobs, buf.subarray(run.start, run.end)));
      for (const s of r.sealed) {
        if (!keep.has(s.chunk)) continue; // a duplicate sealed in vain
        const id = r.ids.subarray(s.chunk * ID_BYTES, (s.chunk + 1) * ID_BYTES);
        totals.newChunks++;
        totals.newBytes += lengths[s.chunk];
        totals.stored += s.length;
        const blob = { id, length: s.length, rawLength: lengths[s.chunk], flags: s.flags };
        if (run && run.end === s.offset) {
          run.blobs.push(blob);
          run.end += s.length;
        } else {
          flush();
          run = { start: s.offset, end: s.offset + s.length, blobs: [blob] };
        }
      }
      flush();
      // Every write settled before the buffer goes back to the pool, also when one failed.
      const refused = (await Promise.allSettled(stores)).find((x) => x.status === 'rejected');
      if (refused) throw refused.reason;
    } finally {
      buffers.give(buf);
    }
  };
  /** Counts a hashed chunk as new (and pending) or as a duplicate; tracks the recent new share. */
  const isNew = (id: Buffer): boolean => {
    const hex = id.toString('hex');
    const fresh = !repo.index.has(id) && !pending.has(hex);
    newShare += ((fresh ? 1 : 0) - newShare) / 16;
    if (!fresh) {
      totals.dedupChunks++;
      return false;
    }
    pending.add(hex);
    return true;
  };

  const finished = () => {
    running--;
    const w = wake;
    wake = null;
    w?.();
  };
  let batch: Batch | null = null;
  const dispatch = async () => {
    const b = batch;
    batch = null;
    if (!b) return;
    while (running >= inflightLimit) await oneFinished();
    running++;
    void processBatch(b)
      .then(() => {
        totals.done += b.span;
        progress();
      })
      .catch((e) => {
        failure ??= e;
      })
      .then(finished);
  };

  for (let i = 0; i < manifest.count && !failure; i++) {
    if (signal?.aborted) {
      failure = signal.reason instanceof RepositoryError ? signal.reason : RepositoryError.aborted();
      break;
    }
    const offset = i * cs;
    const length = manifest.chunkLength(i);
    const end = offset + length;
    if (!inAllocated(offset, end)) {
      await dispatch(); // a batch is consecutive chunks
      totals.zero += length;
      totals.done += length;
      progress();
      continue;
    }
    if (usable && i < usable.count && usable.chunkLength(i) === length && !inChanged(offset, end)) {
      const pid = usable.id(i);
      if (!pid || repo.index.has(pid)) {
        await dispatch();
        manifest.setId(i, pid);
        if (pid) totals.parentBytes += length;
        else totals.zero += length;
        totals.done += length;
        progress();
        continue;
      }
    }
    if (batch && batch.lengths.length < perBatch) {
      batch.lengths.push(length);
      batch.span += length;
      continue;
    }
    await dispatch();
    batch = { first: i, offset, lengths: [length], span: length };
  }
  if (!failure) await dispatch();
  while (running) await oneFinished();
  if (failure) throw failure;
  return manifest;
}

/** Bytes of consecutive chunks sent to a worker at once. */
const BATCH_BYTES = 1 << 20;
/** Recent new-chunk share above which hash and seal go to the worker together. */
const SPECULATE_ABOVE = 0.75;

/** For ascending queries: does [start, end) overlap any of the sorted, merged extents? */
function overlapTester(extents: Extent[]): (start: number, end: number) => boolean {
  let k = 0;
  return (start, end) => {
    while (k < extents.length && extents[k].offset + extents[k].length <= start) k++;
    return k < extents.length && extents[k].offset < end;
  };
}
