// The BACKUP executor, strategy "disk attachment to a proxy VM": metadata → snapshot → attach →
// store → cleanup, each a task phase. The data mover runs inside the proxy VM (its node
// configuration's `proxyServerId`, else the cloud's node configuration's, else the env
// STRONGBOX_PROXY_SERVER_ID), and reads the attached temporary volumes directly.
//
// One Backup row per task: a retry reuses the row of the failed attempt (set back to RUNNING).
// OpenStack leftovers are removed in `finally` — on success, failure and cancellation alike —
// and by the janitor at the start of the next backup on the cloud if this process died.
import type { EntityManager } from '@mikro-orm/postgresql';
import { Backup, BackupDisk, BackupDestination, Cloud, DataMover, Instance, Policy, Volume, type Task } from '../../db/entities/index.ts';
import type { UsageRecorder } from '../usage.ts';
import type { SecretBox } from '../../db/secrets.ts';
import type { HttpOptions, ServiceClients, WaitOptions } from '../../openstack/index.ts';
import { connectCloud } from '../openstack-connection.ts';
import { FileDiskSource, type BackupResult, type DiskInput } from '../repository/index.ts';
import { captureInstance, type InstanceMetadata } from '../strategies/disk-attachment/instance-metadata.ts';
import { cleanOrphans } from '../strategies/disk-attachment/janitor.ts';
import { ProxyDisks } from '../strategies/disk-attachment/proxy-disks.ts';
import { proxySession } from '../strategies/disk-attachment/proxy-session.ts';
import type { TaskContext } from '../task-runner.ts';
import { openDestinationRepository } from './destination-repository.ts';
import { imageDiskRow, imageForBackup } from './glance-image.ts';

export type BackupExecutorDeps = {
  secrets: SecretBox;
  /** The usage ledger, told when a backup becomes available. */
  usage?: UsageRecorder;
  http?: HttpOptions;
  /** Polling of OpenStack resources (tests shorten it). */
  wait?: Omit<WaitOptions, 'signal'>;
  /** Where block devices appear on the proxy (non-nfs drivers). */
  byIdRoot?: string;
  /** The janitor removes tagged leftovers older than this; default 30 minutes. */
  orphanMinutes?: number;
  /** Repository worker threads; default one per core. */
  workers?: number;
};

export class BackupTaskError extends Error {}

export type ProxyPlacement = { proxyServerId: string; attachmentLimit: number };

/** Which proxy VM this data mover reads disks in, and how many it may attach there. */
export async function proxyFor(em: EntityManager, dataMoverId: string, cloud: Cloud): Promise<ProxyPlacement> {
  const mover = await em.findOne(DataMover, dataMoverId, { populate: ['nodeConfiguration'], filters: false });
  const nc = mover?.nodeConfiguration?.proxyServerId ? mover.nodeConfiguration : (await em.populate(cloud, ['nodeConfiguration'])).nodeConfiguration;
  const proxyServerId = nc?.proxyServerId ?? process.env.STRONGBOX_PROXY_SERVER_ID;
  if (!proxyServerId) {
    throw new BackupTaskError(`no proxy VM for cloud ${cloud.name}: set proxyServerId on the data mover's (or the cloud's) node configuration`);
  }
  return { proxyServerId, attachmentLimit: nc?.attachmentLimit ?? 25 };
}

export function backupExecutor(deps: BackupExecutorDeps) {
  return async (ctx: TaskContext): Promise<{ backupId: string }> => {
    const em = ctx.em;
    const task: Task = ctx.task;
    if (!task.instance || !task.destination) throw new BackupTaskError('a backup task needs an instance and a destination');
    const instance = await em.findOneOrFail(Instance, task.instance.id, { populate: ['cloud', 'cloud.authDomains', 'project'], filters: false });
    const destination = await em.findOneOrFail(BackupDestination, task.destination.id, { filters: false });
    const cloud = instance.cloud;
    // The session of the project owning the proxy VM: temporary volumes live there.
    const connection = connectCloud(cloud, deps.secrets, deps.http);
    const placement = await proxyFor(em, ctx.dataMoverId, cloud);
    const os: ServiceClients = connection.clients(await proxySession(em, connection, cloud, placement.proxyServerId));
    const wait = deps.wait ?? { intervalMs: 2000, timeoutMs: 30 * 60_000 };

    // Cheap: two list calls. Orphans of dead tasks go before we add our own resources.
    // Best effort: a janitor failure must not cost this backup.
    try {
      const j = await cleanOrphans(em, os, { proxyServerId: placement.proxyServerId, olderThanMinutes: deps.orphanMinutes, wait });
      for (const e of j.errors) process.stderr.write(`[backup ${task.id}] janitor: ${e.message}\n`);
    } catch (e) {
      process.stderr.write(`[backup ${task.id}] janitor: ${(e as Error).message}\n`);
    }

    await ctx.phase('metadata');
    const metadata = await captureInstance(os, instance.externalId, ctx.signal);
    const backup = await backupRow(em, task, instance, destination, metadata);
    const started = Date.now();

    const proxy = new ProxyDisks(os, task.id, { ...placement, wait, byIdRoot: deps.byIdRoot });
    const sources: FileDiskSource[] = [];
    let failure: unknown;
    try {
      if (metadata.disks.length === 0) throw new BackupTaskError(`instance ${instance.name} has no Cinder volume: nothing this strategy can back up`);
      await ctx.phase('snapshot');
      await proxy.snapshot(metadata.disks.map((d) => ({ id: d.volumeId, sizeGiB: d.sizeGiB })), ctx.signal);

      await ctx.phase('attach');
      await proxy.attach(ctx.signal);

      for (const d of proxy.disks) sources.push(await FileDiskSource.open(d.path!));
      const total = sources.reduce((n, s) => n + s.size, 0);
      await ctx.phase('store', BigInt(total));
      const result = await store(ctx, deps, destination, backup, metadata, sources, { os, enabled: cloud.downloadImage });
      await ctx.phase('cleanup');
      await closeAll(sources);
      const errors = [...(await proxy.settleSnapshots(cloud.keepLastSnapshot)), ...(await proxy.cleanup())];
      if (errors.length) throw new BackupTaskError(`backup stored, but cleanup failed: ${errors.map((e) => e.message).join('; ')}`);
      await complete(em, backup, instance, metadata, result, (Date.now() - started) / 1000);
      await deps.usage?.backupCompleted(em, backup);
      return { backupId: backup.id };
    } catch (e) {
      failure = e;
      throw e;
    } finally {
      if (failure !== undefined) {
        await closeAll(sources);
        const errors = await proxy.cleanup();
        for (const e of errors) process.stderr.write(`[backup ${task.id}] cleanup: ${e.message}\n`);
        await em.nativeUpdate(Backup, { id: backup.id }, {
          state: 'FAILED',
          note: (failure instanceof Error ? failure.message : String(failure)).slice(0, 2000),
        });
      }
    }
  };
}

/** The task's Backup row: the one of an earlier attempt (back to RUNNING), or a new one. */
async function backupRow(em: EntityManager, task: Task, instance: Instance, destination: BackupDestination, metadata: InstanceMetadata): Promise<Backup> {
  const existing = await em.findOne(Backup, { task: task.id }, { filters: false });
  if (existing) {
    Object.assign(existing, { state: 'RUNNING', note: null, metadata: metadata as unknown as Record<string, unknown> });
    await em.flush();
    return existing;
  }
  const backup = em.create(Backup, {
    cloud: instance.cloud, project: instance.project, instance, zone: instance.zone, policy: task.policy, destination, task,
    metadata: metadata as unknown as Record<string, unknown>,
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
  if (!lastFull) return false; // the first backup has no parent anyway
  const since = await ctx.em.count(Backup, { ...chain, type: 'INCREMENTAL', completedAt: { $gt: lastFull.completedAt } }, { filters: false });
  return since >= policy.fullEvery;
}

async function store(
  ctx: TaskContext, deps: BackupExecutorDeps, destination: BackupDestination, backup: Backup, metadata: InstanceMetadata, sources: FileDiskSource[],
  glance: { os: ServiceClients; enabled: boolean },
): Promise<BackupResult & { parent: Backup | null }> {
  // The last good backup of this instance in this destination: its record is the parent (dedup
  // against the whole repository happens anyway; the parent names the chain for the record).
  // An explicit FULL (startBackup type) starts a new chain: no parent recorded; so does AUTO
  // once the policy's `fullEvery` incrementals followed the last full one.
  const parent = (await fullIsDue(ctx, backup, destination)) ? null : await ctx.em.findOne(
    Backup,
    { instance: backup.instance.id, destination: destination.id, state: 'AVAILABLE', repositoryBackupId: { $ne: null }, id: { $ne: backup.id } },
    { orderBy: { completedAt: 'desc' }, filters: false },
  );
  const repo = await openDestinationRepository(destination, deps.secrets, { createIfMissing: true, workers: deps.workers });
  let image: Awaited<ReturnType<typeof imageForBackup>> = null;
  try {
    // "Download image from Glance": the image as one more disk, unless the chain holds it already.
    image = await imageForBackup(glance.os, { enabled: glance.enabled, imageId: metadata.image, parent, position: metadata.disks.length, notCovered: metadata.notCovered, signal: ctx.signal });
    if (image) metadata.glanceImage = image.record;
    const disks: DiskInput[] = metadata.disks.map((d, i) => ({ name: d.volumeId, source: sources[i]! }));
    if (image?.input) disks.push(image.input);
    const result = await repo.backup(disks, {
      tag: `instance:${backup.instance.id}`,
      parent: parent?.repositoryBackupId ?? undefined,
      metadata: { strongboxBackupId: backup.id, instance: metadata },
      signal: ctx.signal,
      onProgress: (p) => ctx.progress({ bytesDone: BigInt(p.bytesDone), bytesTotal: BigInt(p.bytesTotal) }),
    });
    return { ...result, parent };
  } finally {
    await image?.input?.source.close?.();
    await repo.close();
  }
}

async function complete(em: EntityManager, backup: Backup, instance: Instance, metadata: InstanceMetadata, result: BackupResult & { parent: Backup | null }, seconds: number) {
  const volumes = await em.find(Volume, { cloud: instance.cloud.id, externalId: { $in: metadata.disks.map((d) => d.volumeId) } }, { filters: false });
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
    note: metadata.notCovered.length ? `not covered by disk attachment: ${metadata.notCovered.join(', ')}` : null,
    metadata: metadata as unknown as Record<string, unknown>,
  });
  const existing = new Set((await em.find(BackupDisk, { backup: backup.id }, { filters: false })).map((d) => d.position));
  for (const [position, rec] of result.record.disks.entries()) {
    if (existing.has(position)) continue;
    const d = metadata.disks[position];
    if (!d) {
      em.create(BackupDisk, imageDiskRow(backup, backup.project, position, metadata.glanceImage!, rec));
      continue;
    }
    em.create(BackupDisk, {
      backup, project: backup.project, volume: volumes.find((v) => v.externalId === d.volumeId), position, name: d.name ?? d.volumeId, kind: 'CINDER',
      volumeExternalId: d.volumeId, device: d.device ?? undefined, bootIndex: d.bootIndex ?? undefined,
      sizeBytes: BigInt(rec.size), readBytes: BigInt(rec.readBytes), storedBytes: BigInt(rec.storedBytes),
    });
  }
  await em.flush();
}

async function closeAll(sources: FileDiskSource[]) {
  for (const s of sources.splice(0)) await s.close?.().catch(() => {});
}
