// What every backup strategy shares around its data flow: the task's Backup row, the choice of the
// parent backup (chain), the store into the destination's repository, and the completion or
// failure of the row with one BackupDisk per stored disk.
import type { EntityManager } from '@mikro-orm/postgresql';
import { Backup, BackupDisk, BackupDestination, Instance, Policy, Volume, type Task } from '../../db/entities/index.ts';
import type { BackupResult, DiskInput } from '../repository/index.ts';
import type { TaskContext } from '../task-runner.ts';
import type { BackupExecutorDeps } from './backup-executor.ts';
import { recordBackup } from '../../observability/metrics.ts';
import { openDestinationRepository } from './destination-repository.ts';

/** What is recorded of one stored disk, in repository position order. */
export type DiskRecord = {
  name: string;
  /** 'CINDER', 'NOVA_ROOT', 'NOVA_EPHEMERAL' (restore picks the way back by it). */
  kind: string;
  volumeExternalId?: string | null;
  device?: string | null;
  bootIndex?: number | null;
  /** What the strategy needs for the next incremental of this disk (RBD snapshot, libvirt checkpoint…). */
  checkpoint?: string | null;
};

export type StoreResult = BackupResult & { parent: Backup | null };

/** The task's Backup row: the one of an earlier attempt (back to RUNNING), or a new one. */
export async function backupRow(em: EntityManager, task: Task, instance: Instance, destination: BackupDestination, metadata: unknown): Promise<Backup> {
  const existing = await em.findOne(Backup, { task: task.id }, { filters: false });
  if (existing) {
    Object.assign(existing, { state: 'RUNNING', note: null, metadata: metadata as Record<string, unknown> });
    await em.flush();
    return existing;
  }
  const backup = em.create(Backup, {
    cloud: instance.cloud, project: instance.project, instance, zone: instance.zone, policy: task.policy, destination, task,
    metadata: metadata as Record<string, unknown>,
  });
  await em.flush();
  return backup;
}

/** FULL asked for, or AUTO with the policy's `fullEvery` incrementals done since the last full. */
async function fullIsDue(ctx: TaskContext, backup: Backup, destination: BackupDestination): Promise<boolean> {
  const type = ctx.task.params?.type;
  if (type === 'FULL') return true;
  if (type === 'INCREMENTAL' || !ctx.task.policy) return false;
  const policy = await ctx.em.findOneOrFail(Policy, ctx.task.policy.id, { filters: false });
  const chain = { instance: backup.instance.id, destination: destination.id, state: 'AVAILABLE' as const, id: { $ne: backup.id } };
  const lastFull = await ctx.em.findOne(Backup, { ...chain, type: 'FULL' }, { orderBy: { completedAt: 'desc' }, filters: false });
  // None: the first backup, or retention deleted every full while incrementals remain.
  if (!lastFull) return true;
  const since = await ctx.em.count(Backup, { ...chain, type: 'INCREMENTAL', completedAt: { $gt: lastFull.completedAt } }, { filters: false });
  return since >= policy.fullEvery;
}

/**
 * The last good backup of this instance in this destination: its record is the parent (dedup
 * against the whole repository happens anyway; the parent names the chain for the record).
 * An explicit FULL (startBackup type) starts a new chain: no parent recorded; so does AUTO
 * once the policy's `fullEvery` incrementals followed the last full one.
 */
export async function parentBackup(ctx: TaskContext, destination: BackupDestination, backup: Backup): Promise<Backup | null> {
  if (await fullIsDue(ctx, backup, destination)) return null;
  return ctx.em.findOne(
    Backup,
    { instance: backup.instance.id, destination: destination.id, state: 'AVAILABLE', repositoryBackupId: { $ne: null }, id: { $ne: backup.id } },
    { orderBy: { completedAt: 'desc' }, filters: false },
  );
}

/** The parent's per-disk checkpoints, by disk name (what a strategy resumes from). */
export async function parentCheckpoints(em: EntityManager, parent: Backup | null): Promise<Record<string, string> | null> {
  if (!parent) return null;
  const disks = await em.find(BackupDisk, { backup: parent.id }, { filters: false });
  return Object.fromEntries(disks.filter((d) => d.checkpoint).map((d) => [d.name, d.checkpoint!]));
}

/** Store the disks into the destination's repository, on `parent`'s record when there is one. */
export async function storeDisks(
  ctx: TaskContext, deps: BackupExecutorDeps, destination: BackupDestination, backup: Backup, metadata: unknown, disks: DiskInput[], parent: Backup | null,
): Promise<StoreResult> {
  const repo = await openDestinationRepository(destination, deps.secrets, { createIfMissing: true, workers: deps.workers });
  try {
    const result = await repo.backup(disks, {
      tag: `instance:${backup.instance.id}`,
      parent: parent?.repositoryBackupId ?? undefined,
      metadata: { strongboxBackupId: backup.id, instance: metadata },
      signal: ctx.signal,
      onProgress: (p) => ctx.progress({ bytesDone: BigInt(p.bytesDone), bytesTotal: BigInt(p.bytesTotal) }),
    });
    return { ...result, parent };
  } finally {
    await repo.close();
  }
}

/** The row becomes AVAILABLE with its figures and one BackupDisk per stored disk. */
export async function completeBackup(
  em: EntityManager, backup: Backup, instance: Instance, result: StoreResult, disks: DiskRecord[], seconds: number, note: string | null,
) {
  const ids = disks.map((d) => d.volumeExternalId).filter((v): v is string => !!v);
  const volumes = ids.length ? await em.find(Volume, { cloud: instance.cloud.id, externalId: { $in: ids } }, { filters: false }) : [];
  Object.assign(backup, {
    state: 'AVAILABLE',
    type: result.parent ? 'INCREMENTAL' : 'FULL',
    parent: result.parent ?? undefined,
    repositoryBackupId: result.id,
    completedAt: new Date(),
    durationSeconds: seconds,
    frontEndBytes: BigInt(result.logicalBytes),
    readBytes: BigInt(result.readBytes),
    // Everything written to the destination for this backup; equal to stored bytes for now
    // (no transport overhead is measured separately).
    transferredBytes: BigInt(result.storedBytes),
    storedBytes: BigInt(result.storedBytes),
    note,
  });
  const existing = new Set((await em.find(BackupDisk, { backup: backup.id }, { filters: false })).map((d) => d.position));
  for (const [position, rec] of result.record.disks.entries()) {
    if (existing.has(position)) continue;
    const d = disks[position]!;
    em.create(BackupDisk, {
      backup, project: backup.project, volume: volumes.find((v) => v.externalId === d.volumeExternalId), position, name: d.name, kind: d.kind,
      volumeExternalId: d.volumeExternalId ?? undefined, device: d.device ?? undefined, bootIndex: d.bootIndex ?? undefined,
      checkpoint: d.checkpoint ?? undefined,
      sizeBytes: BigInt(rec.size), readBytes: BigInt(rec.readBytes), storedBytes: BigInt(rec.storedBytes),
    });
  }
  await em.flush();
  // The metrics move by exactly the figures the row now holds, once it is AVAILABLE.
  const destination = await em.findOneOrFail(BackupDestination, backup.destination.id, { filters: false });
  recordBackup(destination.name, backup);
}

/** The row becomes FAILED with the reason. */
export async function failBackup(em: EntityManager, backup: Backup, failure: unknown) {
  await em.nativeUpdate(Backup, { id: backup.id }, {
    state: 'FAILED',
    note: (failure instanceof Error ? failure.message : String(failure)).slice(0, 2000),
  });
}
