// BACKUP, strategy "SSH transfer": the instance's disks are read straight from its KVM hypervisor
// over SSH, no proxy VM: libvirt checkpoints and a pull-mode backup job exported over NBD
// (checkpoint-backup.ts), or, where libvirt has no backup jobs, a disk-only snapshot merged back
// after each backup (instance-backup.ts with track: false). Metadata still comes from the OpenStack
// APIs. Phases: metadata → snapshot → store → cleanup.
//
// Which hypervisor: Nova's `OS-EXT-SRV-ATTR:hypervisor_hostname` (or `host`) names the Hypervisor
// row holding the SSH settings; its host key is pinned on first contact. Which domain: Nova's
// `OS-EXT-SRV-ATTR:instance_name`, checked to carry the instance UUID.
import type { EntityManager } from '@mikro-orm/postgresql';
import { BackupDestination, Hypervisor, Instance } from '../../../db/entities/index.ts';
import type { NovaServer, ServiceClients } from '../../../openstack/index.ts';
import { BackupTaskError, type BackupExecutorDeps } from '../../backup/backup-executor.ts';
import { backupRow, completeBackup, failBackup, parentBackup, parentCheckpoints, storeDisks, type DiskRecord } from '../../backup/backup-record.ts';
import { connectCloud } from '../../openstack-connection.ts';
import type { TaskContext } from '../../task-runner.ts';
import { captureInstance, type CapturedDisk, type InstanceMetadata } from '../disk-attachment/instance-metadata.ts';
import { StrategyError, toDiskInput } from '../disk-source.ts';
import { CheckpointInstanceBackup } from './checkpoint-backup.ts';
import type { HypervisorCredentials } from './connection.ts';
import { SshInstanceBackup, type DomainDisk } from './instance-backup.ts';
import { log } from '../../../observability/request-context.ts';

export async function sshTransferBackup(ctx: TaskContext, deps: BackupExecutorDeps, instance: Instance, destination: BackupDestination): Promise<{ backupId: string }> {
  const em = ctx.em;
  const task = ctx.task;
  const connection = connectCloud(instance.cloud, deps.secrets, deps.http);
  const os: ServiceClients = connection.clients(connection.defaultSession());

  await ctx.phase('metadata');
  const server = await os.nova.getServer(instance.externalId, ctx.signal);
  const captured = await captureInstance(os, instance.externalId, ctx.signal);
  const metadata: InstanceMetadata = { ...captured, notCovered: [] };
  const backup = await backupRow(em, task, instance, destination, metadata);
  const started = Date.now();

  let session: CheckpointInstanceBackup | SshInstanceBackup | null = null;
  let failure: unknown;
  try {
    const hypervisor = await hypervisorOf(em, instance, server);
    const parent = await parentBackup(ctx, destination, backup);

    await ctx.phase('snapshot');
    const options = {
      credentials: credentialsOf(hypervisor, deps),
      novaUuid: server.id,
      domainName: server['OS-EXT-SRV-ATTR:instance_name'] || undefined,
      backupId: backup.id,
      parent: await parentCheckpoints(em, parent),
      include: (d: DomainDisk) => classify(d, captured.disks) !== null,
      workDir: deps.hypervisorWorkDir,
    };
    session = await CheckpointInstanceBackup.open(options).catch(async (e: unknown) => {
      // A libvirt without incremental backup: the overlay is merged back after each backup (the
      // VM stays on Nova's chain), and every backup reads the whole disks (deduplicated on store).
      if (!(e instanceof StrategyError && e.code === 'UNSUPPORTED')) throw e;
      return SshInstanceBackup.open({ ...options, parent: null, track: false });
    });
    if (!hypervisor.pinnedHostKey) {
      // First contact: pin the key seen now; later connections refuse any other.
      await em.nativeUpdate(Hypervisor, { id: hypervisor.id }, { pinnedHostKey: session.hostKeyFingerprint });
    }
    const sources: Array<CheckpointInstanceBackup['disks'][number] | SshInstanceBackup['disks'][number]> = session.disks;
    const records: DiskRecord[] = sources.map((s) => classify({ target: s.name, source: s.source }, captured.disks)!);
    // Cinder volumes that are not files on the hypervisor (iSCSI, RBD…) are not read by this path.
    const read = new Set(records.map((r) => r.volumeExternalId).filter(Boolean));
    metadata.notCovered = captured.disks.filter((d) => !read.has(d.volumeId)).map((d) => `Cinder volume ${d.volumeId} (not a file on hypervisor ${hypervisor.hostname})`);

    await ctx.phase('store', BigInt(sources.reduce((n, s) => n + s.size, 0)));
    const inputs = [];
    for (const s of sources) inputs.push(await toDiskInput(s));
    const result = await storeDisks(ctx, deps, destination, backup, metadata, inputs, parent);

    await ctx.phase('cleanup');
    // Checkpoints are known once every disk committed (libvirt's is one for the whole domain).
    for (const s of sources) await s.commit();
    for (const [i, s] of sources.entries()) records[i]!.checkpoint = s.checkpoint || null;
    await session.close();
    session = null;
    const notes = [
      ...sources.filter((s) => s.fallbackReason).map((s) => `${s.name}: full read, ${s.fallbackReason}`),
      ...(metadata.notCovered.length ? [`not covered by SSH transfer: ${metadata.notCovered.join(', ')}`] : []),
    ];
    await completeBackup(em, backup, instance, result, records, (Date.now() - started) / 1000, notes.length ? notes.join('; ') : null);
    await deps.usage?.backupCompleted(em, backup);
    return { backupId: backup.id };
  } catch (e) {
    failure = e;
    throw e;
  } finally {
    if (failure !== undefined) {
      // Closing without commit merges every new overlay back: the VM is left as it was.
      await session?.close().catch((e: Error) => log().warn({ error: e.message }, 'backup cleanup failed'));
      await failBackup(em, backup, failure);
    }
  }
}

/** The Hypervisor row Nova placed the instance on, with its SSH settings. */
async function hypervisorOf(em: EntityManager, instance: Instance, server: NovaServer): Promise<Hypervisor> {
  const names = [server['OS-EXT-SRV-ATTR:hypervisor_hostname'], server['OS-EXT-SRV-ATTR:host']].filter((n): n is string => !!n);
  if (names.length === 0) throw new BackupTaskError(`Nova does not say which host runs instance ${instance.name} (admin credentials needed)`);
  const short = (n: string) => n.split('.')[0]!.toLowerCase();
  const rows = await em.find(Hypervisor, { cloud: instance.cloud.id }, { filters: false });
  const hv = rows.find((h) => names.includes(h.hostname)) ?? rows.find((h) => names.some((n) => short(n) === short(h.hostname)));
  if (!hv) throw new BackupTaskError(`hypervisor ${names[0]} of instance ${instance.name} is not in the inventory: sync the cloud`);
  if (!hv.sshUser || (!hv.sshPassword && !hv.sshKeyPath)) {
    throw new BackupTaskError(`hypervisor ${hv.hostname} has no SSH settings (user and password or key path) for SSH transfer`);
  }
  return hv;
}

function credentialsOf(hv: Hypervisor, deps: BackupExecutorDeps): HypervisorCredentials {
  return {
    host: hv.hostIp ?? hv.hostname,
    port: hv.sshPort,
    username: hv.sshUser!,
    password: hv.sshPassword ? deps.secrets.open(hv.sshPassword) : undefined,
    privateKeyPath: hv.sshKeyPath ?? undefined,
    hostKeyFingerprint: hv.pinnedHostKey ?? null,
    commandPrefix: hv.commandPrefix ?? undefined,
  };
}

/**
 * What a file disk of a Nova domain is, from Nova's file layout: `<instances>/<uuid>/disk` is the
 * root disk, `disk.eph<N>` ephemeral disks, a file naming a Cinder volume of the instance (NFS and
 * other file drivers: `…/volume-<id>`) that volume. Swap (`disk.swap`), the config drive and
 * anything unknown are not backed up (null): Nova recreates them.
 */
export function classify(disk: DomainDisk, volumes: CapturedDisk[]): DiskRecord | null {
  const path = disk.source.replace(/\.sb-[A-Za-z0-9_-]+$/, '');
  const file = path.slice(path.lastIndexOf('/') + 1);
  const device = `/dev/${disk.target}`;
  if (file === 'disk') return { name: disk.target, kind: 'NOVA_ROOT', device, bootIndex: 0 };
  if (/^disk\.eph\d+$/.test(file)) return { name: disk.target, kind: 'NOVA_EPHEMERAL', device, bootIndex: null };
  const v = volumes.find((c) => path.includes(c.volumeId));
  if (v) return { name: disk.target, kind: 'CINDER', volumeExternalId: v.volumeId, device: v.device ?? device, bootIndex: v.bootIndex };
  return null;
}
