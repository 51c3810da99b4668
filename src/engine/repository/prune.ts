// prune: forget backups by retention, then collect garbage. Runs under an EXCLUSIVE lock
// (locks.ts), so no backup is running: every pack that exists is either indexed, or a leftover of
// a crashed run, and nothing new appears while we decide. Steps, in crash-safe order:
//   1. delete the backup records that retention forgets (they become invisible at once);
//   2. mark: read the kept backups' manifests → the set of used chunk ids (refuse if any record or
//      manifest is unreadable: we could not know what it needs);
//   3. packs no index lists are read through their own trailer, so chunks of a crashed backup that
//      a kept backup does use are kept (and re-indexed) rather than lost;
//   4. packs with no used chunk → delete; packs with more than `repackThreshold` unused bytes →
//      copy their used blobs (still sealed, no re-encryption) into new packs;
//   5. write a new consolidated index, THEN delete the old index objects, THEN delete the dead
//      packs, THEN manifests no kept record names, stale locks and temporary files.
// A kill -9 anywhere leaves only duplicates or unreferenced objects, which verify accepts and the
// next prune removes.
import { FsBackend } from '../destinations/fs.ts';
import { planRetention, RetentionError, validateRetention, type RetentionRules } from '../retention.ts';
import type { BackupRecord } from './backup-record.ts';
import { encodeIndex, type IndexedPack } from './chunk-index.ts';
import { RepositoryError } from './errors.ts';
import { layout, randomName } from './format.ts';
import { removeStaleLocks } from './locks.ts';
import { putSealed } from './objects.ts';
import { readPackTrailer, type PackEntry } from './pack.ts';
import { PackWriter } from './pack-writer.ts';
import type { Repository } from './repository.ts';
import { forEachLimit } from './repository.ts';

export type PruneOptions = {
  /** Keep the newest N backups of each tag (untagged backups form one group); default: all.
   *  Shorthand for `retention: { keepLast }`. */
  keepLast?: number;
  /** Retention applied to each tag's backups (untagged backups form one group) with the task
   *  engine's pure function (src/engine/retention.ts); a backup's time is its record's `time`,
   *  and a backup with a parent counts as INCREMENTAL. No rule: every backup is kept. */
  retention?: RetentionRules;
  /** "Now" for `keepWithinMs`/`keepDays`; default the current time. */
  now?: Date;
  /** Also forget exactly these backup ids (the task engine's retention decided); ids the
   *  repository does not hold are ignored, so a repeated prune is harmless. */
  forget?: string[];
  /** Repack a pack once this share of its bytes is unused (default 0.2). */
  repackThreshold?: number;
  signal?: AbortSignal;
};

export type PruneResult = {
  kept: string[];
  forgotten: string[];
  deletedPacks: number;
  repackedPacks: number;
  deletedBytes: number;
  writtenBytes: number;
  deletedIndexObjects: number;
  deletedManifests: number;
  removedLocks: number;
  seconds: number;
};

const PACKS_PER_INDEX = 4096;

export type PrunePlan = { kept: BackupRecord[]; forgotten: BackupRecord[] };

/** Which backups a prune with these options keeps and forgets (oldest first); reads, changes nothing. */
export async function planPrune(repo: Repository, opts: PruneOptions): Promise<PrunePlan> {
  const retention = retentionOf(opts);
  const forget = new Set(opts.forget ?? []);
  const records: BackupRecord[] = [];
  const recordKeys: string[] = [];
  for await (const o of repo.backend.list(layout.backups)) recordKeys.push(o.key);
  await forEachLimit(recordKeys, 8, async (key) => {
    try {
      records.push(await repo.readRecordObject(key));
    } catch (e) {
      throw RepositoryError.damaged(repo.location, key, `prune cannot tell which data it needs (${(e as Error).message}); run verify`, e);
    }
  });
  const groups = new Map<string, BackupRecord[]>();
  for (const r of records) {
    const group = groups.get(r.tag ?? '') ?? [];
    group.push(r);
    groups.set(r.tag ?? '', group);
  }
  const keepIds = new Set<string>();
  for (const group of groups.values()) {
    const plan = planRetention(
      group.map((r) => ({ id: r.id, type: r.parent ? 'INCREMENTAL' : 'FULL', completedAt: new Date(r.time), parentId: r.parent })),
      retention,
      { now: opts.now ?? new Date(), instanceExists: false },
    );
    for (const k of plan.keep) if (!forget.has(k.id)) keepIds.add(k.id);
  }
  records.sort((a, b) => a.time.localeCompare(b.time) || a.id.localeCompare(b.id));
  return { kept: records.filter((r) => keepIds.has(r.id)), forgotten: records.filter((r) => !keepIds.has(r.id)) };
}

/** The rules of `opts`, checked (INVALID_ARGUMENT before anything is locked or read). */
function retentionOf(opts: PruneOptions): RetentionRules {
  const retention: RetentionRules = { ...opts.retention, ...(opts.keepLast !== undefined ? { keepLast: opts.keepLast } : {}) };
  try {
    validateRetention(retention);
  } catch (e) {
    if (e instanceof RetentionError) throw RepositoryError.invalid(e.message);
    throw e;
  }
  return retention;
}

export async function runPrune(repo: Repository, opts: PruneOptions): Promise<PruneResult> {
  const started = Date.now();
  retentionOf(opts);
  const threshold = opts.repackThreshold ?? 0.2;
  const backend = repo.backend;
  const lock = await repo.lock('exclusive', 'prune', opts.signal);
  // Before each destructive step: stop if aborted, or if our lock could not be refreshed (another
  // host may soon take it as stale and run its own prune).
  const check = () => lock.check(opts.signal);
  try {
    // 1. Retention.
    const { kept, forgotten } = await planPrune(repo, opts);
    check();
    for (const r of forgotten) await backend.delete(layout.backup(r.id));

    // 2. Mark.
    await repo.loadIndex();
    if (repo.damagedIndexes.length) {
      // Their packs are re-read through their trailers below, like leftovers.
    }
    const used = new Set<string>();
    const keptManifests = new Set<string>();
    for (const r of kept) {
      for (const d of r.disks) {
        keptManifests.add(d.manifest);
        const m = await repo.readManifest(d.manifest);
        for (let i = 0; i < m.count; i++) {
          const id = m.id(i);
          if (id) used.add(id.toString('hex'));
        }
      }
    }

    // 3. Every stored pack with its entries: from the index, else from its own trailer.
    const stored = new Map<string, number>();
    for await (const o of backend.list(layout.data)) stored.set(o.key.split('/').pop()!, o.size);
    const entriesOf = new Map<string, PackEntry[]>();
    for (const [, packs] of repo.index.objects) for (const p of packs) if (stored.get(p.packId) === p.size && !entriesOf.has(p.packId)) entriesOf.set(p.packId, repo.index.entries(p.packId)!);
    const unindexed = [...stored.keys()].filter((p) => !entriesOf.has(p));
    await forEachLimit(unindexed, 4, async (packId) => {
      try {
        entriesOf.set(packId, await readPackTrailer(backend, packId, stored.get(packId)!, repo.keys.dataKey));
      } catch {
        entriesOf.set(packId, []); // unreadable leftover (e.g. torn by a crash on a non-atomic store): garbage
      }
    });

    // Choose one location per used chunk: the indexed one first, then leftovers.
    const chosen = new Map<string, string>(); // chunk → pack
    const order = [...entriesOf.keys()].sort((a, b) => Number(repo.index.packs.has(b)) - Number(repo.index.packs.has(a)));
    for (const packId of order) {
      for (const e of entriesOf.get(packId)!) {
        const k = e.id.toString('hex');
        if (used.has(k) && !chosen.has(k)) chosen.set(k, packId);
      }
    }
    const missing = [...used].filter((k) => !chosen.has(k));
    if (missing.length) {
      throw RepositoryError.missingObject(repo.location, `chunk ${missing[0]}`, `${missing.length} chunk(s) that kept backups need are in no pack; prune stops without deleting data — run verify`);
    }

    // 4. Classify packs.
    const keepPacks: IndexedPack[] = [];
    const deletePacks: string[] = [];
    const repack: { packId: string; entries: PackEntry[] }[] = [];
    for (const [packId, entries] of entriesOf) {
      const size = stored.get(packId)!;
      const live = entries.filter((e) => chosen.get(e.id.toString('hex')) === packId);
      const liveBytes = live.reduce((s, e) => s + e.length, 0);
      if (live.length === 0) deletePacks.push(packId);
      else if (size - liveBytes > threshold * size) repack.push({ packId, entries: live });
      else keepPacks.push({ packId, size, entries: live });
    }
    const writer = new PackWriter(backend, repo.keys.dataKey, repo.config.packSize, null);
    for (const r of repack) {
      check();
      const buf = await backend.get(layout.pack(r.packId));
      for (const e of r.entries) await writer.add(e.id, Buffer.from(buf.subarray(e.offset, e.offset + e.length)), e.rawLength, e.flags);
    }
    await writer.finish();
    check();

    // 5. New index, then delete old index objects, then packs, manifests, locks, temporaries.
    const newIndex = new Set(writer.indexObjects);
    let writtenBytes = writer.bytesWritten;
    for (let i = 0; i < keepPacks.length; i += PACKS_PER_INDEX) {
      const key = layout.indexObject(randomName());
      writtenBytes += await putSealed(backend, repo.keys.dataKey, key, encodeIndex(keepPacks.slice(i, i + PACKS_PER_INDEX)));
      newIndex.add(key);
    }
    check();
    let deletedIndexObjects = 0;
    for await (const o of backend.list(layout.index)) {
      if (newIndex.has(o.key)) continue;
      check();
      await backend.delete(o.key);
      deletedIndexObjects++;
    }
    let deletedBytes = 0;
    const dead = [...deletePacks, ...repack.map((r) => r.packId)];
    await forEachLimit(dead, 8, async (packId) => {
      check();
      await backend.delete(layout.pack(packId));
      deletedBytes += stored.get(packId)!;
    });
    let deletedManifests = 0;
    for await (const o of backend.list(layout.manifests)) {
      if (keptManifests.has(o.key)) continue;
      check();
      await backend.delete(o.key);
      deletedManifests++;
    }
    check();
    const removedLocks = await removeStaleLocks(backend, undefined);
    if (backend instanceof FsBackend) await backend.cleanTemporaries(60_000);
    await repo.loadIndex();
    return {
      kept: kept.map((r) => r.id),
      forgotten: forgotten.map((r) => r.id),
      deletedPacks: deletePacks.length,
      repackedPacks: repack.length,
      deletedBytes,
      writtenBytes,
      deletedIndexObjects,
      deletedManifests,
      removedLocks,
      seconds: (Date.now() - started) / 1000,
    };
  } finally {
    await lock.release().catch(() => {});
  }
}
