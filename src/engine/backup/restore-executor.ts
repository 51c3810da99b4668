// The RESTORE executor, strategy "disk attachment to a proxy VM": per disk of the backup a new
// volume in the target project and zone (original or mapped volume type), attached to the proxy,
// written from the repository (every chunk's keyed id is checked as it is written), detached;
// then a server booted from the restored root volume with the captured flavor, key pair,
// security groups and networks (mapped, new ports). With `mappings.diskPosition` only that disk
// is restored, as a new volume. On failure or cancellation everything created is deleted.
//
// Images: a server without a root volume boots from an image — the backup's Nova root disk
// (kind NOVA_ROOT) uploaded to Glance as a new image; else the captured image, mapped
// (`mappings.images`), else reused when it is active in the target cloud, else uploaded from the
// backup ("download image from Glance" kept it). Nova ephemeral disks (NOVA_EPHEMERAL) are
// restored as Cinder volumes attached to the new server: Nova cannot be given ephemeral data.
import type { EntityManager } from '@mikro-orm/postgresql';
import { Backup, Restore, type BackupDisk, type Task } from '../../db/entities/index.ts';
import type { RestoreMappings } from '../../db/entities/restore.ts';
import type { SecretBox } from '../../db/secrets.ts';
import { OpenStackError, type HttpOptions, type ServerCreate, type ServiceClients, type WaitOptions } from '../../openstack/index.ts';
import { connectCloud } from '../openstack-connection.ts';
import type { CapturedDisk, InstanceMetadata } from '../strategies/disk-attachment/instance-metadata.ts';
import { ProxyDisks } from '../strategies/disk-attachment/proxy-disks.ts';
import { authDomainOf, proxySession } from '../strategies/disk-attachment/proxy-session.ts';
import type { TaskContext } from '../task-runner.ts';
import { proxyFor } from './backup-executor.ts';
import { openDestinationRepository } from './destination-repository.ts';
import { deleteImageQuietly, imageLocation, imageUsable, uploadImageFromBackup } from './glance-image.ts';
import { recordRestore } from '../../observability/metrics.ts';
import { log } from '../../observability/request-context.ts';

export type RestoreExecutorDeps = {
  secrets: SecretBox;
  http?: HttpOptions;
  wait?: Omit<WaitOptions, 'signal'>;
  byIdRoot?: string;
  workers?: number;
  /** The proxy VM when no node configuration names one (STRONGBOX_PROXY_SERVER_ID). */
  defaultProxyServerId?: string;
};

export class RestoreTaskError extends Error {}

const GiB = 1024 ** 3;
/** Disks restored into new Cinder volumes when the whole instance is restored. */
const VOLUME_KINDS = new Set(['CINDER', 'NOVA_EPHEMERAL']);

const mapped = (list: { from: string; to: string }[] | undefined, from: string | null) => (from && list?.find((m) => m.from === from)?.to) ?? from;

export function restoreExecutor(deps: RestoreExecutorDeps) {
  return async (ctx: TaskContext): Promise<void> => {
    const em = ctx.em;
    const task: Task = ctx.task;
    const restore = await em.findOne(Restore, { task: task.id }, { populate: ['project', 'zone', 'backup'], filters: false });
    if (!restore) throw new RestoreTaskError(`restore task ${task.id} has no Restore row`);
    const backup = await em.findOneOrFail(Backup, restore.backup.id, { populate: ['cloud', 'cloud.authDomains', 'destination', 'disks'], filters: false });
    if (backup.state !== 'AVAILABLE' || !backup.repositoryBackupId) throw new RestoreTaskError(`backup ${backup.id} is ${backup.state}, not restorable`);
    const metadata = backup.metadata as unknown as InstanceMetadata;
    const m: RestoreMappings = restore.mappings ?? {};
    const rows = backup.disks.getItems();
    const single = m.diskPosition != null;
    const selected = single ? rows.filter((r) => r.position === m.diskPosition) : rows.filter((r) => VOLUME_KINDS.has(r.kind));
    if (single && selected.length === 0) throw new RestoreTaskError(`the backup has no disk at position ${m.diskPosition}`);
    const positions = selected.map((r) => r.position);
    const novaRoot = single ? undefined : rows.find((r) => r.kind === 'NOVA_ROOT');

    const cloud = backup.cloud;
    const connection = connectCloud(cloud, deps.secrets, deps.http);
    // The proxy is reached with its own project's session; the new resources belong to the target project.
    const placement = await proxyFor(em, ctx.dataMoverId, cloud, deps.defaultProxyServerId);
    const admin: ServiceClients = connection.clients(await proxySession(em, connection, cloud, placement.proxyServerId));
    const domain = await authDomainOf(em, cloud, restore.project);
    if (!domain) throw new RestoreTaskError(`cloud ${cloud.name} has no auth domain`);
    const target: ServiceClients = connection.clients(connection.projectSession(domain, restore.project.externalId));
    const wait = deps.wait ?? { intervalMs: 2000, timeoutMs: 30 * 60_000 };
    await em.nativeUpdate(Restore, { id: restore.id }, { state: 'RUNNING' });

    const proxy = new ProxyDisks(admin, task.id, { ...placement, wait, byIdRoot: deps.byIdRoot });
    const started = Date.now();
    let written = 0;
    let serverId: string | undefined;
    let imageId: string | undefined;
    let ok = false;
    try {
      // The boot image first: a restore that cannot boot fails before it writes any volume.
      const rootIndex = selected.findIndex((r) => isRootVolume(metadata, r));
      let imageRef: string | undefined;
      if (!single && rootIndex < 0) {
        await ctx.phase('image');
        imageRef = await bootImage(em, target, backup, metadata, m, novaRoot, restore.name, {
          signal: ctx.signal, wait, workers: deps.workers, secrets: deps.secrets, onCreated: (id) => (imageId = id),
        });
      }

      await ctx.phase('volumes');
      for (const row of selected) {
        const p = row.position;
        const d = capturedDisk(metadata, row);
        const vol = await target.cinder.createVolume({
          size: d?.sizeGiB ?? Math.max(1, Math.ceil(Number(row.sizeBytes) / GiB)),
          name: single ? restore.name : `${restore.name}-${isRootVolume(metadata, row) ? 'root' : `disk${p}`}`,
          volume_type: mapped(m.volumeTypes, d?.volumeType ?? null) ?? undefined,
          availability_zone: restore.zone?.name ?? d?.availabilityZone ?? metadata.server.availabilityZone,
          // Not the janitor's tag: these volumes are the result and must outlive the task.
          metadata: { 'strongbox-restore-task': task.id },
        }, ctx.signal);
        proxy.disks.push({ sourceVolumeId: row.volumeExternalId ?? row.name, sizeGiB: vol.size, volumeId: vol.id });
        await target.cinder.waitForVolume(vol.id, ['available'], { ...wait, signal: ctx.signal });
      }

      await ctx.phase('attach');
      await proxy.attach(ctx.signal);

      const total = selected.reduce((n, d) => n + d.sizeBytes, 0n);
      await ctx.phase('restore', total);
      const repo = await openDestinationRepository(backup.destination, deps.secrets, { workers: deps.workers });
      try {
        let before = 0;
        for (const [i, p] of positions.entries()) {
          const r = await repo.restore(backup.repositoryBackupId, p, { kind: 'device', path: proxy.disks[i]!.path! }, {
            signal: ctx.signal,
            onProgress: (x) => ctx.progress({ bytesDone: BigInt(before + x.bytesDone), bytesTotal: total }),
          });
          before += r.bytes;
        }
        written = before;
      } finally {
        await repo.close();
      }

      await ctx.phase('detach');
      const detachErrors = await proxy.detachAll();
      if (detachErrors.length) throw new RestoreTaskError(detachErrors.map((e) => e.message).join('; '));

      let resultId: string;
      if (single) {
        resultId = proxy.disks[0]!.volumeId!;
      } else {
        await ctx.phase('server');
        const spec = await serverSpec(target, restore.name, restore.zone?.name, metadata, m, proxy.disks.map((d) => d.volumeId!), rootIndex, imageRef, ctx.signal);
        serverId = (await target.nova.createServer(spec, ctx.signal)).id;
        await target.nova.waitForServer(serverId, ['ACTIVE'], { ...wait, signal: ctx.signal });
        resultId = serverId;
      }
      await em.nativeUpdate(Restore, { id: restore.id }, { state: 'SUCCEEDED', resultExternalId: resultId });
      ok = true;
      recordRestore(backup.destination.name, { bytes: written, seconds: (Date.now() - started) / 1000 });
    } finally {
      if (!ok) {
        if (serverId) await deleteServer(target, serverId, wait);
        if (imageId) await deleteImageQuietly(target, imageId);
        const errors = await proxy.cleanup();
        for (const e of errors) log().warn({ error: e.message }, 'restore cleanup failed');
        await em.nativeUpdate(Restore, { id: restore.id }, { state: ctx.signal.aborted ? 'CANCELLED' : 'FAILED' });
      }
    }
  };
}

/** The captured Cinder disk of a row (by volume ID; older backups by position). */
function capturedDisk(meta: InstanceMetadata, row: BackupDisk): CapturedDisk | undefined {
  if (row.kind !== 'CINDER') return undefined;
  return meta.disks.find((d) => d.volumeId === row.volumeExternalId) ?? meta.disks[row.position];
}

function isRootVolume(meta: InstanceMetadata, row: BackupDisk): boolean {
  return row.kind === 'CINDER' && (capturedDisk(meta, row)?.bootIndex ?? row.bootIndex ?? null) === 0;
}

/**
 * The image a server without a root volume boots from: the backup's Nova root disk uploaded as a
 * new image; else the captured image mapped, reused, or uploaded from the backup. An image
 * created here is reported through `onCreated` (deleted by the caller if the restore fails).
 */
async function bootImage(
  em: EntityManager, os: ServiceClients, backup: Backup, meta: InstanceMetadata, m: RestoreMappings, novaRoot: BackupDisk | undefined, name: string,
  o: { signal: AbortSignal; wait: Omit<WaitOptions, 'signal'>; workers?: number; secrets: SecretBox; onCreated: (id: string) => void },
): Promise<string> {
  let from: { repositoryBackupId: string; position: number };
  let upload: Parameters<typeof uploadImageFromBackup>[3];
  if (novaRoot) {
    // The root disk as it was (bytes of the whole disk, raw), not the base image it started from.
    from = { repositoryBackupId: backup.repositoryBackupId!, position: novaRoot.position };
    upload = {
      name: `${name}-root`, diskFormat: 'raw', containerFormat: 'bare', minRam: meta.glanceImage?.minRam,
      properties: { ...meta.glanceImage?.properties, 'strongbox-restored-from': meta.server.id },
    };
  } else {
    const wanted = m.images?.find((x) => x.from === meta.image)?.to;
    if (wanted) return wanted;
    if (!meta.image) throw new RestoreTaskError('the backup has no root volume and no image to boot from');
    if (await imageUsable(os, meta.image, o.signal)) return meta.image;
    const held = await imageLocation(em, backup);
    if (!held) {
      throw new RestoreTaskError(`image ${meta.image} exists neither in the target cloud nor in the image mappings, and the backup does not hold it ("download image from Glance" was off): give an image mapping`);
    }
    from = held;
    const i = held.image;
    upload = {
      name: i.name ?? `${name}-image`, diskFormat: i.diskFormat, containerFormat: i.containerFormat, minDisk: i.minDisk, minRam: i.minRam,
      properties: { ...i.properties, 'strongbox-restored-from': i.imageId }, expected: i,
    };
  }
  const repo = await openDestinationRepository(backup.destination, o.secrets, { workers: o.workers });
  try {
    const image = await uploadImageFromBackup(os, repo, from, upload, { signal: o.signal, wait: o.wait, onCreated: o.onCreated });
    return image.id;
  } finally {
    await repo.close();
  }
}

async function serverSpec(
  os: ServiceClients, name: string, zone: string | undefined, meta: InstanceMetadata, m: RestoreMappings, volumeIds: string[],
  rootIndex: number, imageRef: string | undefined, signal: AbortSignal,
): Promise<ServerCreate> {
  let flavorRef = m.flavorId;
  if (!flavorRef) {
    const flavor = (await os.nova.listFlavors(signal)).find((f) => f.name === meta.flavor.original_name);
    if (!flavor) throw new RestoreTaskError(`flavor ${meta.flavor.original_name} does not exist any more: give a flavor mapping`);
    flavorRef = flavor.id;
  }
  if (rootIndex < 0 && !imageRef) throw new RestoreTaskError('the backup has no root volume and no image to boot from');
  const bdms: NonNullable<ServerCreate['block_device_mapping_v2']> = volumeIds.map((uuid, i) => ({
    boot_index: i === rootIndex ? 0 : null, uuid, source_type: 'volume', destination_type: 'volume', delete_on_termination: false,
  }));
  // New ports on the (mapped) networks of the original ports; none captured: no network.
  const networks = meta.ports.map((p) => ({ uuid: mapped(m.networks, p.networkId)! }));
  return {
    name,
    flavorRef,
    imageRef,
    availability_zone: zone ?? meta.server.availabilityZone,
    key_name: m.keyName ?? meta.keyName ?? undefined,
    security_groups: (m.securityGroups ?? meta.securityGroups).map((g) => ({ name: g })),
    networks: networks.length ? networks : 'none',
    block_device_mapping_v2: bdms,
    metadata: { 'strongbox-restored-from': meta.server.id },
  };
}

async function deleteServer(os: ServiceClients, id: string, wait: Omit<WaitOptions, 'signal'>) {
  try {
    await os.nova.deleteServer(id);
    await os.nova.waitForServerGone(id, wait);
  } catch (e) {
    if (!(e instanceof OpenStackError && e.notFound)) log().warn({ serverId: id, error: (e as Error).message }, 'could not delete server');
  }
}
