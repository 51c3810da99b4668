// The restorer: one disk of one backup to a sparse file, a block device or a stream. Every chunk
// is decrypted (AES-256-GCM with the chunk id as AAD: a blob that opens under its id is the chunk a
// key holder stored under that id) and decompressed in worker threads before it is written; with
// `verify` its keyed id is recomputed too (docs/repository-format.md, "What a restore checks"). Blobs lying
// back to back in a pack are fetched with one ranged read (up to MAX_READ).
// To a file or device the workers write what they restore themselves, in any order, with O_DIRECT
// where the file system allows it (and from a local destination read the packs themselves too);
// to a stream it comes back in order. Zero ranges are skipped in files (the file is sized first,
// so they stay holes) and written out to devices and streams.
import { constants } from 'node:fs';
import fs from 'node:fs/promises';
import type { Writable } from 'node:stream';
import type { ChunkLocation } from './chunk-index.ts';
import { RepositoryError } from './errors.ts';
import { layout } from './format.ts';
import type { Manifest } from './manifest.ts';
import type { Repository } from './repository.ts';
import { BackendError } from '../destinations/backend.ts';
import { ChunkError, PackReadError } from './workers.ts';
import { BufferPool } from './buffer-pool.ts';
import { chunkId } from './keys.ts';
import { timingSafeEqual } from 'node:crypto';

export type RestoreTarget =
  /** A new sparse file (written as <path>.partial, renamed when complete). Refuses an existing
   *  path unless `overwrite`. */
  | { kind: 'file'; path: string; overwrite?: boolean }
  /** An existing block device (or file) of at least the disk's size; every byte is written. */
  | { kind: 'device'; path: string }
  /** Every byte, in order. The stream is not ended. */
  | { kind: 'stream'; stream: Writable };

export type RestoreOptions = {
  onProgress?: (p: { bytesDone: number; bytesTotal: number }) => void;
  signal?: AbortSignal;
  /** Recompute every chunk's keyed id (HMAC-SHA256) before writing it. Without it the
   *  authenticated decryption under the id is the check (as `restic restore` without --verify). */
  verify?: boolean;
};

export type RestoreResult = { backupId: string; disk: string; bytes: number; writtenBytes: number; chunks: number; seconds: number };

// Up to WINDOW groups in flight, each one ranged read of at most MAX_READ stored bytes restored
// into one buffer of at most MAX_RAW plain bytes (both reused: a worker's own when it writes the
// target, else lent): enough to keep both cores and the disk busy, little enough to bound memory.
export const MAX_READ = 1 << 20;
export const MAX_RAW = 2 << 20; // worker-thread.ts sizes its restore buffers for it
const WINDOW = 4;
// Groups the workers read themselves cost the main thread no buffer: a deeper queue per worker
// then only hides the main thread's wake-up latency (a worker never waits for its next group).
const LOCAL_WINDOW = 8;
const ZERO_WRITE = 1 << 20;

type Group =
  | { kind: 'zero'; offset: number; length: number }
  | { kind: 'data'; offset: number; pack: string; packOffset: number; length: number; rawLength: number; slots: { i: number; loc: ChunkLocation; id: Buffer }[] };

export async function runRestore(
  repo: Repository,
  backupId: string,
  disk: number | string,
  target: RestoreTarget,
  opts: RestoreOptions,
): Promise<RestoreResult> {
  const started = Date.now();
  const lock = await repo.lock('shared', 'restore', opts.signal);
  // Stop at the caller's abort, or once the lock could not be refreshed (locks.ts): a prune may
  // then run, and what it removes would fail the restore anyway.
  const signal = opts.signal ? AbortSignal.any([opts.signal, lock.signal]) : lock.signal;
  let fh: fs.FileHandle | null = null;
  let direct: fs.FileHandle | null = null;
  let partial: string | null = null;
  try {
    await repo.loadIndex();
    const { name, manifest } = await diskManifest(repo, backupId, disk);
    const groups = plan(repo, manifest, backupId);

    if (target.kind === 'file') {
      if (!target.overwrite && (await exists(target.path))) throw RepositoryError.targetExists(target.path);
      partial = `${target.path}.partial`;
      fh = await fs.open(partial, 'w');
      await fh.truncate(manifest.size);
    } else if (target.kind === 'device') {
      fh = await fs.open(target.path, 'r+');
    }
    // The same file again, O_DIRECT, for the workers' aligned writes; null where refused (tmpfs of old kernels).
    if (fh) direct = await fs.open(partial ?? (target as { path: string }).path, constants.O_WRONLY | constants.O_DIRECT).catch(() => null);
    const sparse = target.kind === 'file';
    const trustSeal = !opts.verify && repo.config.encryption?.algorithm === 'aes-256-gcm';

    const progress = reporter(opts.onProgress, manifest.size);
    const stored = new BufferPool(Math.max(MAX_READ, manifest.chunkSize + 64), WINDOW + 1);
    const counts = fh
      ? await restoreToFile(repo, groups, fh, direct?.fd, sparse, trustSeal, stored, progress, signal)
      : await restoreToStream(repo, groups, (target as { stream: Writable }).stream, manifest.chunkSize, trustSeal, stored, progress, signal);
    if (direct) {
      await direct.close();
      direct = null;
    }
    if (fh) {
      await fh.sync();
      await fh.close();
      fh = null;
    }
    if (partial && target.kind === 'file') {
      await fs.rename(partial, target.path);
      partial = null;
    }
    return { backupId, disk: name, bytes: manifest.size, ...counts, seconds: (Date.now() - started) / 1000 };
  } finally {
    await direct?.close().catch(() => {});
    await fh?.close().catch(() => {});
    if (partial) await fs.rm(partial, { force: true }).catch(() => {});
    await lock.release().catch(() => {});
  }
}

/**
 * One disk of a backup chunk by chunk, for a restore onto a disk that may already hold much of
 * it: the keyed id of each chunk (null: zero), a check whether given bytes are that chunk, and
 * the verified plain bytes of any chunk, fetched only when asked for. Holds the shared lock
 * until `close()`.
 */
export type DiskChunks = {
  size: number;
  chunkSize: number;
  count: number;
  isZero(i: number): boolean;
  length(i: number): number;
  /** Whether `plain` is chunk i (its keyed id computed with the repository's id key). */
  matches(i: number, plain: Buffer): boolean;
  /** Chunk i's bytes, decrypted, decompressed and checked against its id. */
  read(i: number): Promise<Buffer>;
  /** Stored bytes fetched from the destination so far. */
  fetchedBytes: number;
  close(): Promise<void>;
};

/** A backup's disk (by position or name): its name and manifest. */
async function diskManifest(repo: Repository, backupId: string, disk: number | string): Promise<{ name: string; manifest: Manifest }> {
  const record = await repo.getBackup(backupId);
  const d = typeof disk === 'number' ? record.disks[disk] : record.disks.find((x) => x.name === disk);
  if (!d) throw RepositoryError.diskNotFound(backupId, disk, record.disks.length);
  return { name: d.name, manifest: await repo.readManifest(d.manifest) };
}

export async function openDiskChunks(repo: Repository, backupId: string, disk: number | string, signal?: AbortSignal): Promise<DiskChunks> {
  const lock = await repo.lock('shared', 'restore', signal);
  try {
    await repo.loadIndex();
    const { manifest: m } = await diskManifest(repo, backupId, disk);
    const stored = new BufferPool(Math.max(MAX_READ, m.chunkSize + 64), WINDOW + 1);
    const out: DiskChunks = {
      size: m.size,
      chunkSize: m.chunkSize,
      count: m.count,
      fetchedBytes: 0,
      isZero: (i) => !m.id(i),
      length: (i) => m.chunkLength(i),
      matches: (i, plain) => {
        const id = m.id(i);
        return !!id && plain.length === m.chunkLength(i) && timingSafeEqual(chunkId(repo.keys.idKey, plain), id);
      },
      read: async (i) => {
        const id = m.id(i);
        if (!id) return Buffer.alloc(m.chunkLength(i));
        const offset = i * m.chunkSize;
        const loc = repo.index.get(id);
        if (!loc) throw RepositoryError.missingObject(repo.location, `chunk ${id.toString('hex')}`, `backup ${backupId} needs it at offset ${offset} but no index lists it`);
        const g: DataGroup = { kind: 'data', offset, pack: loc.pack, packOffset: loc.offset, length: loc.length, rawLength: loc.rawLength, slots: [{ i, loc, id: Buffer.from(id) }] };
        const buf = await readGroup(repo, g, stored);
        out.fetchedBytes += g.length;
        const r = await openGroup(repo, g, () => repo.pool.open(buf, blobsOf(g), Buffer.allocUnsafeSlow(g.rawLength)));
        stored.give(r.buf);
        return r.out;
      },
      close: async () => {
        await lock.release().catch(() => {});
      },
    };
    return out;
  } catch (e) {
    await lock.release().catch(() => {});
    throw e;
  }
}

function plan(repo: Repository, m: Manifest, backupId: string): Group[] {
  const groups: Group[] = [];
  for (let i = 0; i < m.count; i++) {
    const offset = i * m.chunkSize;
    const length = m.chunkLength(i);
    const id = m.id(i);
    const last = groups[groups.length - 1];
    if (!id) {
      if (last?.kind === 'zero' && last.offset + last.length === offset) last.length += length;
      else groups.push({ kind: 'zero', offset, length });
      continue;
    }
    const loc = repo.index.get(id);
    if (!loc) {
      throw RepositoryError.missingObject(repo.location, `chunk ${id.toString('hex')}`, `backup ${backupId} needs it at offset ${offset} but no index lists it`);
    }
    if (loc.rawLength !== length) throw RepositoryError.damaged(repo.location, layout.pack(loc.pack), `chunk ${id.toString('hex')} has length ${loc.rawLength}, the manifest expects ${length}`);
    const slot = { i, loc, id: Buffer.from(id) };
    if (
      last?.kind === 'data' &&
      last.pack === loc.pack &&
      last.packOffset + last.length === loc.offset &&
      last.length + loc.length <= MAX_READ &&
      last.rawLength + loc.rawLength <= MAX_RAW &&
      last.offset + last.rawLength === offset
    ) {
      last.slots.push(slot);
      last.length += loc.length;
      last.rawLength += loc.rawLength;
    } else groups.push({ kind: 'data', offset, pack: loc.pack, packOffset: loc.offset, length: loc.length, rawLength: loc.rawLength, slots: [slot] });
  }
  return groups;
}

type DataGroup = Extract<Group, { kind: 'data' }>;
type Counts = { writtenBytes: number; chunks: number };
type Progress = (done: number, last?: boolean) => void;

function reporter(onProgress: RestoreOptions['onProgress'], bytesTotal: number): Progress {
  let lastReport = 0;
  return (bytesDone, last = false) => {
    if (!onProgress || (!last && Date.now() - lastReport <= 100)) return;
    lastReport = Date.now();
    onProgress({ bytesDone, bytesTotal });
  };
}

/** To a file or device: each worker decrypts, verifies and writes its groups itself (positional
 *  writes, in any order), so restored bytes never cross threads. From a local destination the
 *  workers read the packs too: the main thread only plans and dispatches. */
async function restoreToFile(repo: Repository, groups: Group[], fh: fs.FileHandle, direct: number | undefined, sparse: boolean, trustSeal: boolean, stored: BufferPool, progress: Progress, signal: AbortSignal): Promise<Counts> {
  const counts = { writtenBytes: 0, chunks: 0 };
  let done = 0;
  let failure: unknown = null;
  const running = new Set<Promise<void>>();
  let zeroBuf: Buffer | null = null;
  const local = repo.backend.localFile?.bind(repo.backend);
  for (const g of groups) {
    if (signal.aborted) failure ??= stopped(signal);
    if (failure) break;
    if (g.kind === 'zero') {
      if (!sparse) {
        zeroBuf ??= Buffer.alloc(ZERO_WRITE);
        for (let o = 0; o < g.length; o += zeroBuf.length) await writeAll(fh, zeroBuf.subarray(0, Math.min(zeroBuf.length, g.length - o)), g.offset + o);
        counts.writtenBytes += g.length;
      }
      done += g.length;
      progress(done);
      continue;
    }
    while (running.size >= (local ? LOCAL_WINDOW : WINDOW)) await Promise.race(running);
    const p: Promise<void> = (async () => {
      const to = { fd: fh.fd, direct, position: g.offset, trustSeal };
      if (local) await openGroup(repo, g, () => readLocal(repo, g, () => repo.pool.restoreFromFile({ path: local(layout.pack(g.pack)), offset: g.packOffset, length: g.length }, blobsOf(g), to)));
      else {
        const buf = await readGroup(repo, g, stored);
        stored.give(await openGroup(repo, g, () => repo.pool.restoreTo(buf, blobsOf(g), to)));
      }
      counts.writtenBytes += g.rawLength;
      counts.chunks += g.slots.length;
      done += g.rawLength;
      progress(done);
    })()
      .catch((e) => {
        failure ??= e;
      })
      .finally(() => running.delete(p));
    running.add(p);
  }
  while (running.size) await Promise.race(running);
  if (local) await repo.pool.release();
  if (!failure && signal.aborted) failure = stopped(signal);
  if (failure) throw failure;
  progress(done, true);
  return counts;
}

/** To a stream: in order, through a sliding window of groups restored into lent buffers. */
async function restoreToStream(repo: Repository, groups: Group[], stream: Writable, chunkSize: number, trustSeal: boolean, stored: BufferPool, progress: Progress, signal: AbortSignal): Promise<Counts> {
  const counts = { writtenBytes: 0, chunks: 0 };
  let done = 0;
  const plain = new BufferPool(Math.max(MAX_RAW, chunkSize), WINDOW + 1);
  const zeroBuf = Buffer.alloc(Math.min(ZERO_WRITE, Math.max(chunkSize, 1 << 16)));
  const write = async (buf: Buffer) => {
    if (!stream.write(buf)) await new Promise<void>((r, j) => {
      stream.once('drain', r);
      stream.once('error', j);
    });
    counts.writtenBytes += buf.length;
  };
  const fetches: Promise<Buffer | null>[] = [];
  let next = 0;
  const start = () => {
    const g = groups[next++];
    const f = g.kind === 'zero' ? Promise.resolve(null) : readGroup(repo, g, stored).then(async (buf) => {
      const r = await openGroup(repo, g, () => repo.pool.open(buf, blobsOf(g), plain.take(g.rawLength), trustSeal));
      stored.give(r.buf);
      return r.out;
    });
    f.catch(() => {}); // surfaced when consumed
    fetches.push(f);
  };
  while (next < groups.length && fetches.length < WINDOW) start();
  for (let k = 0; k < groups.length; k++) {
    if (signal.aborted) {
      await Promise.allSettled(fetches); // no worker or read runs on after we return
      throw stopped(signal);
    }
    const g = groups[k];
    const out = await fetches[k];
    delete fetches[k];
    if (next < groups.length) start();
    if (g.kind === 'zero') {
      for (let o = 0; o < g.length; o += zeroBuf.length) await write(zeroBuf.subarray(0, Math.min(zeroBuf.length, g.length - o)));
      done += g.length;
    } else {
      await write(out!); // the stream may still hold it: not given back to the pool
      counts.chunks += g.slots.length;
      done += g.rawLength;
    }
    progress(done, k === groups.length - 1);
  }
  return counts;
}

/** Why an aborted restore stopped: the lock's LOCK_LOST, else ABORTED. */
function stopped(signal: AbortSignal): RepositoryError {
  return signal.reason instanceof RepositoryError ? signal.reason : RepositoryError.aborted();
}

async function writeAll(fh: fs.FileHandle, buf: Buffer, position: number): Promise<void> {
  for (let o = 0; o < buf.length; ) o += (await fh.write(buf, o, buf.length - o, position + o)).bytesWritten;
}

/** The group's stored bytes: one ranged read, into a pooled buffer. */
async function readGroup(repo: Repository, g: DataGroup, stored: BufferPool): Promise<Buffer> {
  const key = layout.pack(g.pack);
  let buf: Buffer;
  try {
    buf = await repo.backend.getRange(key, g.packOffset, g.length, stored.take(g.length));
  } catch (e) {
    if ((e as { code?: string }).code === 'NOT_FOUND') throw RepositoryError.missingObject(repo.location, key, 'a backup references chunks in it');
    throw e;
  }
  if (buf.length !== g.length) throw RepositoryError.truncated(repo.location, key, g.packOffset + g.length, g.packOffset + buf.length);
  return buf;
}

/** A worker's read of a local pack, its failures named as readGroup names them. */
async function readLocal(repo: Repository, g: DataGroup, run: () => Promise<void>): Promise<void> {
  try {
    await run();
  } catch (e) {
    if (!(e instanceof PackReadError)) throw e;
    const key = layout.pack(g.pack);
    if (e.code === 'ENOENT') throw RepositoryError.missingObject(repo.location, key, 'a backup references chunks in it');
    if (e.code === 'SHORT') throw RepositoryError.truncated(repo.location, key, g.packOffset + g.length, g.packOffset + (e.bytes ?? 0));
    throw new BackendError('UNAVAILABLE', `${repo.location}: ${key}: ${e.message}`, { cause: e });
  }
}

function blobsOf(g: DataGroup) {
  return g.slots.map((s) => ({ offset: s.loc.offset - g.packOffset, length: s.loc.length, flags: s.loc.flags, rawLength: s.loc.rawLength, id: s.id }));
}

/** Runs a worker's open of the group, naming the damaged chunk when one fails. */
async function openGroup<T>(repo: Repository, g: DataGroup, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (e) {
    if (e instanceof ChunkError) {
      const s = g.slots[e.blobIndex ?? 0];
      throw RepositoryError.damaged(repo.location, layout.pack(g.pack), `chunk ${s.id.toString('hex')} at pack offset ${s.loc.offset}: ${e.message}`);
    }
    throw e;
  }
}

async function exists(p: string): Promise<boolean> {
  return fs.stat(p).then(
    () => true,
    () => false,
  );
}
