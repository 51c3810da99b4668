// BACKUP, strategy "disk attachment to a proxy VM": metadata → snapshot → attach → store →
// cleanup, each a task phase. The data mover runs inside the proxy VM (its node configuration's
// `proxyServerId`, else the cloud's node configuration's, else the configured STRONGBOX_PROXY_SERVER_ID),
// and reads the attached temporary volumes directly.
//
// Cinder volumes on a Ceph pool mapped to a storage provider are read from the cluster instead
// (RBD snapshot diffs, see rbd-volumes.ts); DISK_ATTACHMENT_CBT names clouds set up that way. In
// that mode a volume that cannot be diffed (its type maps to no pool, its zone has no storage
// provider) is still backed up — scanned whole, as the mode does on non-Ceph storage — and
// `Backup.note` names it with the reason, so a missing mapping never goes unnoticed.
//
// OpenStack leftovers are removed in `finally` — on success, failure and cancellation alike —
// and by the janitor at the start of the next backup on the cloud if this process died.
import { BackupDestination, Instance } from '../../../db/entities/index.ts';
import type { ServiceClients } from '../../../openstack/index.ts';
import { BackupTaskError, proxyFor, type BackupExecutorDeps } from '../../backup/backup-executor.ts';
import { backupRow, completeBackup, failBackup, parentBackup, storeDisks, type DiskRecord } from '../../backup/backup-record.ts';
import { imageForBackup } from '../../backup/glance-image.ts';
import { connectCloud } from '../../openstack-connection.ts';
import { FileDiskSource, type DiskInput } from '../../repository/index.ts';
import type { TaskContext } from '../../task-runner.ts';
import { captureInstance, type InstanceMetadata } from './instance-metadata.ts';
import { cleanOrphans } from './janitor.ts';
import { ProxyDisks } from './proxy-disks.ts';
import { proxySession } from './proxy-session.ts';
import { RbdVolumes } from './rbd-volumes.ts';
import { toDiskInput } from '../disk-source.ts';
import { log } from '../../../observability/request-context.ts';

export async function diskAttachmentBackup(ctx: TaskContext, deps: BackupExecutorDeps, instance: Instance, destination: BackupDestination): Promise<{ backupId: string }> {
    const em = ctx.em;
    const task = ctx.task;
    const cloud = instance.cloud;
    // The session of the project owning the proxy VM: temporary volumes live there.
    const connection = connectCloud(cloud, deps.secrets, deps.http);
    const placement = await proxyFor(em, ctx.dataMoverId, cloud, deps.defaultProxyServerId);
    const os: ServiceClients = connection.clients(await proxySession(em, connection, cloud, placement.proxyServerId));
    const wait = deps.wait ?? { intervalMs: 2000, timeoutMs: 30 * 60_000 };

    // Cheap: two list calls. Orphans of dead tasks go before we add our own resources.
    // Best effort: a janitor failure must not cost this backup.
    try {
      const j = await cleanOrphans(em, os, { proxyServerId: placement.proxyServerId, olderThanMinutes: deps.orphanMinutes, wait });
      for (const e of j.errors) log().warn({ error: e.message }, 'orphan janitor');
    } catch (e) {
      log().warn({ error: (e as Error).message }, 'orphan janitor failed');
    }

    await ctx.phase('metadata');
    const metadata = await captureInstance(os, instance.externalId, ctx.signal);
    const backup = await backupRow(em, task, instance, destination, metadata);
    const started = Date.now();

    const proxy = new ProxyDisks(os, task.id, { ...placement, wait, byIdRoot: deps.byIdRoot });
    const sources: FileDiskSource[] = [];
    let rbd: RbdVolumes | null = null;
    let failure: unknown;
    try {
      if (metadata.disks.length === 0) throw new BackupTaskError(`instance ${instance.name} has no Cinder volume: nothing this strategy can back up`);
      const parent = await parentBackup(ctx, destination, backup);
      await ctx.phase('snapshot');
      // Volumes on a mapped Ceph pool are read from the cluster (RBD diff); the others are attached.
      rbd = await RbdVolumes.open(em, deps.secrets, cloud, metadata.disks, backup.id, parent);
      const attached = metadata.disks.filter((d) => !rbd!.sources.has(d.volumeId));
      await proxy.snapshot(attached.map((d) => ({ id: d.volumeId, sizeGiB: d.sizeGiB })), ctx.signal);

      await ctx.phase('attach');
      await proxy.attach(ctx.signal);

      for (const d of proxy.disks) sources.push(await FileDiskSource.open(d.path!));
      const total = sources.reduce((n, s) => n + s.size, 0) + [...rbd.sources.values()].reduce((n, s) => n + s.size, 0);
      await ctx.phase('store', BigInt(total));
      const inputs: DiskInput[] = [];
      for (const d of metadata.disks) {
        const r = rbd.sources.get(d.volumeId);
        inputs.push(r ? { ...(await toDiskInput(r)), name: d.volumeId } : { name: d.volumeId, source: sources[attached.indexOf(d)]! });
      }
      // "Download image from Glance": the image as one more disk, unless the chain holds it already.
      const image = await imageForBackup(os, { enabled: cloud.downloadImage, imageId: metadata.image, parent, position: metadata.disks.length, notCovered: metadata.notCovered, signal: ctx.signal });
      if (image) metadata.glanceImage = image.record;
      if (image?.input) inputs.push(image.input);
      let result;
      try {
        result = await storeDisks(ctx, deps, destination, backup, metadata, inputs, parent);
      } finally {
        await image?.input?.source.close?.();
      }
      await ctx.phase('cleanup');
      await closeAll(sources);
      const errors = [...(await proxy.settleSnapshots(cloud.keepLastSnapshot)), ...(await proxy.cleanup())];
      if (errors.length) throw new BackupTaskError(`backup stored, but cleanup failed: ${errors.map((e) => e.message).join('; ')}`);
      const notes = [
        ...[...rbd.sources].filter(([, s]) => s.fallbackReason).map(([id, s]) => `volume ${id}: ${s.fallbackReason}`),
        // Change tracking asked for but not possible for these: say why each was scanned whole.
        ...(cloud.mode === 'DISK_ATTACHMENT_CBT'
          ? [...rbd.unmapped].map(([id, why]) => `volume ${id}: no RBD diff (${why}); read whole through the proxy, changes found by scanning`)
          : []),
        ...(metadata.notCovered.length ? [`not covered by disk attachment: ${metadata.notCovered.join(', ')}`] : []),
      ];
      const records: DiskRecord[] = diskRecords(metadata).map((r) => ({ ...r, checkpoint: rbd!.sources.get(r.volumeExternalId!)?.checkpoint || null }));
      if (image?.input) records.push({ name: image.record.imageId, kind: 'IMAGE' });
      backup.metadata = metadata as unknown as Record<string, unknown>; // with the image it holds or names
      await completeBackup(em, backup, instance, result, records, (Date.now() - started) / 1000, notes.length ? notes.join('; ') : null);
      // Only now, with the record naming them durable, do the new RBD snapshots replace the old
      // bases (a failure above removes them in `finally` and the old bases stay).
      for (const e of await rbd.commit()) log().warn({ error: e.message }, 'RBD snapshot cleanup failed');
      await rbd.close();
      await deps.usage?.backupCompleted(em, backup);
      return { backupId: backup.id };
    } catch (e) {
      failure = e;
      throw e;
    } finally {
      if (failure !== undefined) {
        await closeAll(sources);
        await rbd?.close();
        const errors = await proxy.cleanup();
        for (const e of errors) log().warn({ error: e.message }, 'backup cleanup failed');
        await failBackup(em, backup, failure);
      }
    }
}

function diskRecords(metadata: InstanceMetadata): DiskRecord[] {
  return metadata.disks.map((d) => ({
    name: d.name ?? d.volumeId, kind: 'CINDER', volumeExternalId: d.volumeId, device: d.device, bootIndex: d.bootIndex,
  }));
}

async function closeAll(sources: FileDiskSource[]) {
  for (const s of sources.splice(0)) await s.close?.().catch(() => {});
}
