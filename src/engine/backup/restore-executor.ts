// The RESTORE executor, strategy "disk attachment to a proxy VM": per disk of the backup a new
// volume in the target project and zone (original or mapped volume type), attached to the proxy,
// written from the repository (every chunk's keyed id is checked as it is written), detached;
// then a server booted from the restored root volume with the captured flavor, key pair,
// security groups and networks (mapped, new ports). With `mappings.diskPosition` only that disk
// is restored, as a new volume. On failure or cancellation everything created is deleted.
//
// Images: a server without a root volume boots from an image. With the backup's Nova root disk
// (kind NOVA_ROOT, SSH transfer): when the instance's image (or the image it is mapped to) is
// active in the target cloud and the zone's hypervisors have SSH settings, the server boots from
// that image, is stopped, and the backup's root disk is written over its disk on the hypervisor
// where it differs (ssh/root-disk-restore.ts), then started: no image upload. Otherwise the root
// disk is uploaded to Glance as a new image, and the restore's note says why. Without a Nova root
// disk: the captured image, mapped
// (`mappings.images`), else reused when it is active in the target cloud, else uploaded from the
// backup ("download image from Glance" kept it). Nova ephemeral disks (NOVA_EPHEMERAL) are
// restored as Cinder volumes attached to the new server: Nova cannot be given ephemeral data.
import type { EntityManager } from '@mikro-orm/postgresql';
import { Backup, Hypervisor, Restore, type BackupDisk, type Cloud, type Task } from '../../db/entities/index.ts';
import type { RestoreMappings } from '../../db/entities/restore.ts';
import type { SecretBox } from '../../db/secrets.ts';
import { OpenStackError, type HttpOptions, type ServerCreate, type ServiceClients, type WaitOptions } from '../../openstack/index.ts';
import { connectCloud } from '../openstack-connection.ts';
import type { CapturedDisk, InstanceMetadata } from '../strategies/disk-attachment/instance-metadata.ts';
import { ProxyDisks } from '../strategies/disk-attachment/proxy-disks.ts';
import { authDomainOf, proxySession } from '../strategies/disk-attachment/proxy-session.ts';
import { hasSshSettings } from '../strategies/ssh/hypervisor-access.ts';
import { writeRootDisk } from '../strategies/ssh/root-disk-restore.ts';
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
  /** SSH transfer: hypervisor folder for qemu-nbd sockets (default /tmp). */
  hypervisorWorkDir?: string;
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
    let note: string | null = null;
    let ok = false;
    try {
      // The boot image first: a restore that cannot boot fails before it writes any volume.
      const rootIndex = selected.findIndex((r) => isRootVolume(metadata, r));
      let imageRef: string | undefined;
      let base: BaseImage | null = null;
      if (!single && rootIndex < 0) {
        await ctx.phase('image');
        if (novaRoot) {
          const choice = await baseImageFor(em, target, cloud, metadata, m, restore.zone?.name ?? metadata.server.availabilityZone, ctx.signal);
          if ('reason' in choice) note = `root disk: uploaded as a new image (${choice.reason})`;
          else base = choice;
        }
        imageRef = base?.imageId ?? await bootImage(em, target, backup, metadata, m, novaRoot, restore.name, {
          signal: ctx.signal, wait, workers: deps.workers, secrets: deps.secrets, verify: restore.verify, onCreated: (id) => (imageId = id),
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
            verify: restore.verify,
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
        if (base && novaRoot) {
          note = await rootDiskOntoImage(ctx, deps, target, cloud, backup, novaRoot, serverId, base, wait);
          written += Number(novaRoot.sizeBytes);
        }
        resultId = serverId;
      }
      await em.nativeUpdate(Restore, { id: restore.id }, { state: 'SUCCEEDED', resultExternalId: resultId, note });
      ok = true;
      recordRestore(backup.destination.name, { bytes: written, seconds: (Date.now() - started) / 1000 });
    } finally {
      if (!ok) {
        if (serverId) await deleteServer(target, serverId, wait);
        if (imageId) await deleteImageQuietly(target, imageId);
        const errors = await proxy.cleanup();
        for (const e of errors) log().warn({ error: e.message }, 'restore cleanup failed');
        await em.nativeUpdate(Restore, { id: restore.id }, { state: ctx.signal.aborted ? 'CANCELLED' : 'FAILED', note });
      }
    }
  };
}

type BaseImage = { imageId: string; mappedFrom: string | null };

/**
 * The existing image a Nova root disk can be restored onto, or why there is none: the cloud uses
 * SSH transfer, the instance was booted from an image, that image (or the one it is mapped to)
 * is active in the target cloud, and every hypervisor of the target zone has SSH settings (the
 * disk is written where Nova places the server).
 */
async function baseImageFor(
  em: EntityManager, os: ServiceClients, cloud: Cloud, meta: InstanceMetadata, m: RestoreMappings, zone: string | null | undefined, signal: AbortSignal,
): Promise<BaseImage | { reason: string }> {
  if (cloud.mode !== 'SSH_TRANSFER') return { reason: `cloud ${cloud.name} does not use SSH transfer` };
  if (!meta.image) return { reason: 'the instance was not booted from an image' };
  const mappedTo = m.images?.find((x) => x.from === meta.image)?.to ?? null;
  const imageId = mappedTo ?? meta.image;
  if (!(await imageUsable(os, imageId, signal))) {
    return { reason: mappedTo ? `image ${mappedTo}, mapped from ${meta.image}, is not active in the target cloud` : `image ${meta.image} is neither active in the target cloud nor mapped` };
  }
  const all = await em.find(Hypervisor, { cloud: cloud.id, present: true }, { populate: ['zone'], filters: false });
  const inZone = all.filter((h) => !zone || !h.zone || h.zone.name === zone);
  const without = inZone.filter((h) => !hasSshSettings(h));
  if (inZone.length === 0) return { reason: `no hypervisor of zone ${zone} in the inventory` };
  if (without.length) return { reason: `hypervisor${without.length > 1 ? 's' : ''} ${without.map((h) => h.hostname).join(', ')} of zone ${zone} ha${without.length > 1 ? 've' : 's'} no SSH settings` };
  return { imageId, mappedFrom: mappedTo ? meta.image : null };
}

/**
 * The server booted from `base` is stopped, the backup's root disk written over its disk where
 * they differ, and started again. Returns the restore's note.
 */
async function rootDiskOntoImage(
  ctx: TaskContext, deps: RestoreExecutorDeps, os: ServiceClients, cloud: Cloud, backup: Backup, novaRoot: BackupDisk, serverId: string, base: BaseImage,
  wait: Omit<WaitOptions, 'signal'>,
): Promise<string> {
  const size = Number(novaRoot.sizeBytes);
  await ctx.phase('root-disk', novaRoot.sizeBytes);
  await os.nova.stopServer(serverId, ctx.signal);
  const server = await os.nova.waitForServer(serverId, ['SHUTOFF'], { ...wait, signal: ctx.signal });
  const repo = await openDestinationRepository(backup.destination, deps.secrets, { workers: deps.workers });
  let r;
  try {
    r = await writeRootDisk({
      em: ctx.em, secrets: deps.secrets, cloudId: cloud.id, server, repo, tag: ctx.task.id, workDir: deps.hypervisorWorkDir, signal: ctx.signal,
      from: { repositoryBackupId: backup.repositoryBackupId!, position: novaRoot.position, sizeBytes: size },
      onProgress: (p) => ctx.progress({ bytesDone: BigInt(p.bytesDone), bytesTotal: BigInt(p.bytesTotal) }),
    });
  } finally {
    await repo.close();
  }
  await ctx.phase('server');
  await os.nova.startServer(serverId, ctx.signal);
  await os.nova.waitForServer(serverId, ['ACTIVE'], { ...wait, signal: ctx.signal });
  const mib = (n: number) => `${(n / 2 ** 20).toFixed(n % 2 ** 20 ? 2 : 0)} MiB`;
  return [
    `root disk: image ${base.imageId} reused${base.mappedFrom ? ` (mapped from ${base.mappedFrom})` : ''}`,
    `${mib(r.writtenBytes)} of ${mib(r.sizeBytes)} written (${r.writtenBytes} bytes) on ${r.hypervisor}`,
    `${mib(r.fetchedBytes)} fetched from the destination`,
    ...(r.grownFrom !== null ? [`the new disk was grown from ${mib(r.grownFrom)}`] : []),
    ...(r.largerBy ? [`the new disk is ${mib(r.largerBy)} larger than the backup's; that tail is the image's`] : []),
  ].join(', ');
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
  o: { signal: AbortSignal; wait: Omit<WaitOptions, 'signal'>; workers?: number; secrets: SecretBox; verify: boolean; onCreated: (id: string) => void },
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
    const image = await uploadImageFromBackup(os, repo, from, upload, { signal: o.signal, wait: o.wait, verify: o.verify, onCreated: o.onCreated });
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
