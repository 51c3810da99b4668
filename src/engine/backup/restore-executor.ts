// The RESTORE executor, strategy "disk attachment to a proxy VM": per disk of the backup a new
// volume in the target project and zone (original or mapped volume type), attached to the proxy,
// written from the repository (every chunk's keyed id is checked as it is written), detached;
// then a server booted from the restored root volume with the captured flavor, key pair,
// security groups and networks (mapped, new ports). With `mappings.diskPosition` only that disk
// is restored, as a new volume. On failure or cancellation everything created is deleted.
import type { EntityManager } from '@mikro-orm/postgresql';
import { Backup, CloudAuthDomain, Restore, type Cloud, type Project, type Task } from '../../db/entities/index.ts';
import type { RestoreMappings } from '../../db/entities/restore.ts';
import type { SecretBox } from '../../db/secrets.ts';
import { OpenStackError, type HttpOptions, type ServerCreate, type ServiceClients, type WaitOptions } from '../../openstack/index.ts';
import { connectCloud } from '../openstack-connection.ts';
import type { CapturedDisk, InstanceMetadata } from '../strategies/disk-attachment/instance-metadata.ts';
import { ProxyDisks } from '../strategies/disk-attachment/proxy-disks.ts';
import type { TaskContext } from '../task-runner.ts';
import { proxyFor } from './backup-executor.ts';
import { openDestinationRepository } from './destination-repository.ts';

export type RestoreExecutorDeps = {
  secrets: SecretBox;
  http?: HttpOptions;
  wait?: Omit<WaitOptions, 'signal'>;
  byIdRoot?: string;
  workers?: number;
};

export class RestoreTaskError extends Error {}

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
    const positions = m.diskPosition != null ? [m.diskPosition] : metadata.disks.map((_, i) => i);
    if (positions.some((p) => !metadata.disks[p])) throw new RestoreTaskError(`the backup has no disk at position ${m.diskPosition}`);

    const cloud = backup.cloud;
    const connection = connectCloud(cloud, deps.secrets, deps.http);
    // The proxy is reached with the admin session; the new resources belong to the target project.
    const admin: ServiceClients = connection.clients(connection.defaultSession());
    const target: ServiceClients = connection.clients(connection.projectSession(await authDomainOf(em, cloud, restore.project), restore.project.externalId));
    const placement = await proxyFor(em, ctx.dataMoverId, cloud);
    const wait = deps.wait ?? { intervalMs: 2000, timeoutMs: 30 * 60_000 };
    await em.nativeUpdate(Restore, { id: restore.id }, { state: 'RUNNING' });

    const proxy = new ProxyDisks(admin, task.id, { ...placement, wait, byIdRoot: deps.byIdRoot });
    let serverId: string | undefined;
    let ok = false;
    try {
      await ctx.phase('volumes');
      for (const p of positions) {
        const d = metadata.disks[p]!;
        const vol = await target.cinder.createVolume({
          size: d.sizeGiB,
          name: positions.length === 1 && m.diskPosition != null ? restore.name : `${restore.name}-${p === 0 && d.bootIndex === 0 ? 'root' : `disk${p}`}`,
          volume_type: mapped(m.volumeTypes, d.volumeType) ?? undefined,
          availability_zone: restore.zone?.name ?? d.availabilityZone,
          // Not the janitor's tag: these volumes are the result and must outlive the task.
          metadata: { 'strongbox-restore-task': task.id },
        }, ctx.signal);
        proxy.disks.push({ sourceVolumeId: d.volumeId, sizeGiB: d.sizeGiB, volumeId: vol.id });
        await target.cinder.waitForVolume(vol.id, ['available'], { ...wait, signal: ctx.signal });
      }

      await ctx.phase('attach');
      await proxy.attach(ctx.signal);

      const total = backup.disks.getItems().filter((d) => positions.includes(d.position)).reduce((n, d) => n + d.sizeBytes, 0n);
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
      } finally {
        await repo.close();
      }

      await ctx.phase('detach');
      const detachErrors = await proxy.detachAll();
      if (detachErrors.length) throw new RestoreTaskError(detachErrors.map((e) => e.message).join('; '));

      let resultId: string;
      if (m.diskPosition != null) {
        resultId = proxy.disks[0]!.volumeId!;
      } else {
        await ctx.phase('server');
        const spec = await serverSpec(target, restore.name, restore.zone?.name, metadata, m, proxy.disks.map((d) => d.volumeId!), ctx.signal);
        serverId = (await target.nova.createServer(spec, ctx.signal)).id;
        await target.nova.waitForServer(serverId, ['ACTIVE'], { ...wait, signal: ctx.signal });
        resultId = serverId;
      }
      await em.nativeUpdate(Restore, { id: restore.id }, { state: 'SUCCEEDED', resultExternalId: resultId });
      ok = true;
    } finally {
      if (!ok) {
        if (serverId) await deleteServer(target, serverId, wait);
        const errors = await proxy.cleanup();
        for (const e of errors) process.stderr.write(`[restore ${task.id}] cleanup: ${e.message}\n`);
        await em.nativeUpdate(Restore, { id: restore.id }, { state: ctx.signal.aborted ? 'CANCELLED' : 'FAILED' });
      }
    }
  };
}

/** The credential set for a project: the auth domain whose domain ID (or name) is the project's. */
async function authDomainOf(em: EntityManager, cloud: Cloud, project: Project): Promise<string> {
  const domains = await em.find(CloudAuthDomain, { cloud: cloud.id }, { filters: false, orderBy: { createdAt: 'asc' } });
  const match = domains.find((d) => d.domainId && d.domainId === project.domainId)
    ?? domains.find((d) => d.name.toLowerCase() === (project.domainId ?? '').toLowerCase())
    ?? domains[0];
  if (!match) throw new RestoreTaskError(`cloud ${cloud.name} has no auth domain`);
  return match.name;
}

async function serverSpec(
  os: ServiceClients, name: string, zone: string | undefined, meta: InstanceMetadata, m: RestoreMappings, volumeIds: string[], signal: AbortSignal,
): Promise<ServerCreate> {
  let flavorRef = m.flavorId;
  if (!flavorRef) {
    const flavor = (await os.nova.listFlavors(signal)).find((f) => f.name === meta.flavor.original_name);
    if (!flavor) throw new RestoreTaskError(`flavor ${meta.flavor.original_name} does not exist any more: give a flavor mapping`);
    flavorRef = flavor.id;
  }
  const rootIndex = meta.disks.findIndex((d: CapturedDisk) => d.bootIndex === 0);
  const imageRef = rootIndex < 0 ? mapped(m.images, meta.image) ?? undefined : undefined;
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
    if (!(e instanceof OpenStackError && e.notFound)) process.stderr.write(`[restore] could not delete server ${id}: ${(e as Error).message}\n`);
  }
}
