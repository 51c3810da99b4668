// BACKUP, strategy "SSH transfer": the instance's disks are read straight from its KVM hypervisor
// over SSH, no proxy VM: libvirt checkpoints and a pull-mode backup job exported over NBD
// (checkpoint-backup.ts), or, where libvirt has no backup jobs, a disk-only snapshot merged back
// after each backup (instance-backup.ts with track: false). RBD-backed disks of the domain are read
// from Ceph with the zone's storage provider (rbd-disks.ts). All of them are snapshotted at one
// point in time (consistent-point.ts: guest filesystems frozen, or the domain paused while there is
// more than one snapshot to take); how consistent it is goes into the backup's metadata
// (`consistency`). Metadata still comes from the OpenStack APIs. Phases: metadata → snapshot →
// store → cleanup. What the next incremental builds on (the new checkpoint, the new RBD snapshots)
// replaces the parent's only once the backup record is durable.
//
// Which hypervisor: Nova's `OS-EXT-SRV-ATTR:hypervisor_hostname` (or `host`) names the Hypervisor
// row holding the SSH settings; its host key is pinned on first contact. Which domain: Nova's
// `OS-EXT-SRV-ATTR:instance_name`, checked to carry the instance UUID.
import { BackupDestination, Hypervisor, Instance } from '../../../db/entities/index.ts';
import type { NovaServer, ServiceClients } from '../../../openstack/index.ts';
import { BackupTaskError, type BackupExecutorDeps } from '../../backup/backup-executor.ts';
import { backupRow, completeBackup, failBackup, parentBackup, parentCheckpoints, storeDisks, type DiskRecord } from '../../backup/backup-record.ts';
import { connectCloud } from '../../openstack-connection.ts';
import type { TaskContext } from '../../task-runner.ts';
import { captureInstance, type CapturedDisk, type InstanceMetadata } from '../disk-attachment/instance-metadata.ts';
import { StrategyError, toDiskInput } from '../disk-source.ts';
import { CheckpointInstanceBackup } from './checkpoint-backup.ts';
import { atOnePoint, type Consistency, type SnapshotStep } from './consistent-point.ts';
import { HypervisorConnection, type HypervisorCredentials } from './connection.ts';
import { credentialsOf, HypervisorAccessError, hypervisorOf } from './hypervisor-access.ts';
import { Libvirt } from './libvirt.ts';
import { NovaRbdDisks } from './rbd-disks.ts';
import type { RbdDiskSource } from '../rbd/rbd-source.ts';
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
  const metadata: InstanceMetadata & { consistency?: Consistency } = { ...captured, notCovered: [] };
  const backup = await backupRow(em, task, instance, destination, metadata);
  const started = Date.now();

  let session: CheckpointInstanceBackup | SshInstanceBackup | null = null;
  let rbd: NovaRbdDisks | null = null;
  /** The connection that asks for the domain's layout and holds the guest still around the snapshots. */
  let control: HypervisorConnection | null = null;
  let failure: unknown;
  try {
    const hypervisor = await hypervisorOf(em, instance.cloud.id, server, `instance ${instance.name}`).catch((e: unknown) => {
      throw e instanceof HypervisorAccessError ? new BackupTaskError(e.message) : e;
    });
    const parent = await parentBackup(ctx, destination, backup);
    const parentCps = await parentCheckpoints(em, parent);

    await ctx.phase('snapshot');
    control = await HypervisorConnection.connect(credentialsOf(hypervisor, deps));
    const layout = await domainLayout(control, server);
    if (!hypervisor.pinnedHostKey) {
      // First contact: pin the key seen now; later connections refuse any other.
      await em.nativeUpdate(Hypervisor, { id: hypervisor.id }, { pinnedHostKey: layout.hostKey });
    }
    const credentials = { ...credentialsOf(hypervisor, deps), hostKeyFingerprint: layout.hostKey };
    const covered = (d: DomainDisk) => classify(d, captured.disks) !== null;
    const rbdDisks = layout.rbd.filter((d) => covered({ target: d.target, source: `${d.pool}/${d.image}` }));
    const fileTargets = new Set(layout.files.filter(covered).map((d) => d.target));
    if (fileTargets.size === 0 && rbdDisks.length === 0) throw new StrategyError('NO_DISKS', `domain ${layout.domain} has no disks to back up`);
    if (fileTargets.size) {
      const options = {
        credentials,
        novaUuid: server.id,
        domainName: layout.domain,
        backupId: backup.id,
        parent: parentCps && Object.fromEntries(Object.entries(parentCps).filter(([target]) => fileTargets.has(target))),
        include: covered,
        workDir: deps.hypervisorWorkDir,
        // netcat: the export is relayed on the hypervisor's address the data mover reaches it by.
        transport: hypervisor.netcatPort ? { kind: 'netcat' as const, bindAddress: credentials.host, port: hypervisor.netcatPort } : { kind: 'ssh' as const },
      };
      session = await CheckpointInstanceBackup.prepare(options).catch(async (e: unknown) => {
        // A libvirt without incremental backup: the overlay is merged back after each backup (the
        // VM stays on Nova's chain), and every backup reads the whole disks (deduplicated on store).
        if (!(e instanceof StrategyError && e.code === 'UNSUPPORTED')) throw e;
        return SshInstanceBackup.prepare({ ...options, parent: null, track: false });
      });
    }
    // RBD-backed disks: read from the cluster with the zone's storage provider (rbd-disks.ts).
    rbd = await NovaRbdDisks.open(em, deps.secrets, instance, rbdDisks, backup.id, parentCps);
    // Every snapshot at one point in time (a failure leaves none: `finally` closes what was taken).
    const files = session;
    const steps: SnapshotStep[] = [...(files ? [() => files.snapshot()] : []), ...rbd.snapshotSteps()];
    metadata.consistency = await atOnePoint(new Libvirt(control), layout.domain, steps);
    control.close();
    control = null;
    await session?.expose();
    await rbd.expose();

    type Source = CheckpointInstanceBackup['disks'][number] | SshInstanceBackup['disks'][number] | RbdDiskSource;
    const sources: Array<{ target: string; source: Source; record: DiskRecord }> = [];
    for (const s of session?.disks ?? []) sources.push({ target: s.name, source: s, record: classify({ target: s.name, source: s.source }, captured.disks)! });
    for (const d of rbdDisks) {
      const s = rbd.sources.get(d.target);
      if (s) sources.push({ target: d.target, source: s, record: classify({ target: d.target, source: `${d.pool}/${d.image}` }, captured.disks)! });
    }
    // Cinder volumes that are neither files on the hypervisor nor RBD images read here are not covered.
    const read = new Set(sources.map((s) => s.record.volumeExternalId).filter(Boolean));
    metadata.notCovered = [
      ...captured.disks.filter((d) => !read.has(d.volumeId)).map((d) => `Cinder volume ${d.volumeId} (not a file on hypervisor ${hypervisor.hostname})`),
      ...rbd.notCovered,
    ];

    await ctx.phase('store', BigInt(sources.reduce((n, s) => n + s.source.size, 0)));
    const inputs = [];
    for (const s of sources) inputs.push({ ...(await toDiskInput(s.source)), name: s.target });
    const result = await storeDisks(ctx, deps, destination, backup, metadata, inputs, parent);

    await ctx.phase('cleanup');
    const records = sources.map((s) => ({ ...s.record, checkpoint: s.source.checkpoint || null }));
    // The overlay design keeps nothing for the next run: its overlays are merged back before the
    // record, so a failed merge fails the backup with the reason.
    if (session instanceof SshInstanceBackup) for (const s of session.disks) await s.commit();
    const notes = [
      ...sources.filter((s) => s.source.fallbackReason).map((s) => `${s.target}: full read, ${s.source.fallbackReason}`),
      ...(metadata.notCovered.length ? [`not covered by SSH transfer: ${metadata.notCovered.join(', ')}`] : []),
    ];
    await completeBackup(em, backup, instance, result, records, (Date.now() - started) / 1000, notes.length ? notes.join('; ') : null);
    // Only now, with the record naming them durable, do the new checkpoint and RBD snapshots
    // replace the parent's (a failure before this removes them in `finally`; the parent's still
    // hold every change). A failure here leaves leftovers the next run removes: the backup stands.
    const leftovers: Error[] = [...(await rbd.commit())];
    if (session instanceof CheckpointInstanceBackup) {
      try {
        for (const s of session.disks) await s.commit();
      } catch (e) {
        leftovers.push(e as Error);
      }
    }
    for (const e of leftovers) log().warn({ error: e.message }, 'checkpoint cleanup failed');
    await session?.close().catch((e: Error) => log().warn({ error: e.message }, 'backup cleanup failed'));
    session = null;
    await rbd.close();
    rbd = null;
    await deps.usage?.backupCompleted(em, backup);
    return { backupId: backup.id };
  } catch (e) {
    failure = e;
    throw e;
  } finally {
    control?.close();
    if (failure !== undefined) {
      // Closing without commit merges every new overlay back and removes the new checkpoint and
      // RBD snapshots: the VM and the cluster are left as they were.
      await session?.close().catch((e: Error) => log().warn({ error: e.message }, 'backup cleanup failed'));
      await rbd?.close();
      await failBackup(em, backup, failure);
    }
  }
}

/** The instance's domain on the hypervisor and its file and RBD disks. */
async function domainLayout(conn: HypervisorConnection, server: NovaServer) {
  const lv = new Libvirt(conn);
  const name = server['OS-EXT-SRV-ATTR:instance_name'];
  const domain = name ? await lv.checkDomain(name, server.id) : await lv.domainName(server.id);
  return { domain, hostKey: conn.hostKeyFingerprint, files: await lv.disks(domain), rbd: await lv.rbdDisks(domain) };
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
  // Files `<uuid>/disk`, `disk.eph<N>`; RBD images (images_type=rbd) `<uuid>_disk`, `<uuid>_disk.eph<N>`.
  if (file === 'disk' || /^[0-9a-f-]{36}_disk$/.test(file)) return { name: disk.target, kind: 'NOVA_ROOT', device, bootIndex: 0 };
  if (/^(?:[0-9a-f-]{36}_)?disk\.eph\d+$/.test(file)) return { name: disk.target, kind: 'NOVA_EPHEMERAL', device, bootIndex: null };
  const v = volumes.find((c) => path.includes(c.volumeId));
  if (v) return { name: disk.target, kind: 'CINDER', volumeExternalId: v.volumeId, device: v.device ?? device, bootIndex: v.bootIndex };
  return null;
}
