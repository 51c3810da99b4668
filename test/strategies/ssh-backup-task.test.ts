// BACKUP tasks end to end, strategy "SSH transfer": a task queued in PostgreSQL and run by a real
// data mover; metadata from the OpenStack simulator, whose server `kvm-1` runs (per Nova's
// OS-EXT-SRV-ATTR attributes) on the hypervisor that is the sshd lab host, as the libvirt lab's
// domain; disk data read over SSH from that real libvirt/KVM domain into a real repository. With an
// RBD disk attached as well, every snapshot is taken in one pause of the domain (consistent-point.ts),
// watched with `virsh event`.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AvailabilityZone, Backup, BackupDestination, Cloud, CloudAuthDomain, Hypervisor, Instance, StorageProvider, Task } from '../../src/db/entities/index.ts';
import { openOrm, systemFork, type Orm } from '../../src/db/orm.ts';
import { SecretBox } from '../../src/db/secrets.ts';
import { backupExecutor } from '../../src/engine/backup/backup-executor.ts';
import { openDestinationRepository } from '../../src/engine/backup/destination-repository.ts';
import { startDataMover, type RunningDataMover } from '../../src/engine/data-mover.ts';
import { syncInventory } from '../../src/engine/inventory/sync.ts';
import { createTask } from '../../src/engine/tasks/tasks.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { taskEnded } from '../helpers/task-ended.ts';
import { refuseBackupRecords, REFUSAL } from '../helpers/refuse-backup-record.ts';
import { applySource, sha256File } from '../helpers/disk-image.ts';
import { CephClient } from '../../src/engine/strategies/rbd/ceph-client.ts';
import { RbdDiskSource } from '../../src/engine/strategies/rbd/rbd-source.ts';
import { atOnePoint } from '../../src/engine/strategies/ssh/consistent-point.ts';
import { HypervisorConnection } from '../../src/engine/strategies/ssh/connection.ts';
import { SshInstanceBackup } from '../../src/engine/strategies/ssh/instance-backup.ts';
import { Libvirt } from '../../src/engine/strategies/ssh/libvirt.ts';
import { holdLab, lab, labCommand } from '../helpers/labs.ts';
import { startSimulator, type TestSim } from '../helpers/simulator.ts';

const MiB = 1024 * 1024;
let t: TestSim;
let orm: Orm;
let drop: () => Promise<void>;
let mover: RunningDataMover | undefined;
let tmp: string;
let ssh: Record<string, string>;
let releaseDomain: (() => void) | undefined;
let vm: Record<string, string>;
let cloudId: string;
let destinationId: string;
let kvm: Instance;
const secrets = new SecretBox(randomBytes(32));
const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8' });
const blklist = () => sh('virsh', ['-q', 'domblklist', vm.LIBVIRT_DOMAIN]).trim();
const checkpoints = () => sh('virsh', ['-q', 'checkpoint-list', vm.LIBVIRT_DOMAIN!, '--name']).trim();
/** Persistent dirty bitmaps QEMU keeps for a disk (written into its qcow2 file when QEMU closes it). */
function bitmapsOf(target: 'vda' | 'vdb'): string[] {
  const out = JSON.parse(sh('virsh', ['qemu-monitor-command', vm.LIBVIRT_DOMAIN!, '{"execute":"query-block"}'])) as {
    return: { qdev?: string; inserted?: { 'dirty-bitmaps'?: { name: string; persistent: boolean }[] } }[];
  };
  const dev = out.return.find((b) => b.qdev?.includes(`virtio-disk${target === 'vda' ? 0 : 1}`));
  return (dev?.inserted?.['dirty-bitmaps'] ?? []).filter((b) => b.persistent).map((b) => b.name);
}
const domstate = () => sh('virsh', ['-q', 'domstate', vm.LIBVIRT_DOMAIN!]).trim();

/** A lifecycle event of the lab domain ("Suspended", "Resumed", …) and when libvirt reported it (ms). */
type Lifecycle = { event: string; at: number };
/**
 * `virsh event --all --loop --timestamp` on the lab domain, started before the caller's backup;
 * resolves once it is listening (it printed a metadata change we made: virsh prints nothing until
 * an event arrives). The returned function stops it and gives the lifecycle events it saw.
 */
async function watchLifecycle(): Promise<() => Promise<Lifecycle[]>> {
  const child = spawn('stdbuf', ['-oL', 'virsh', '-q', 'event', '--domain', vm.LIBVIRT_DOMAIN!, '--all', '--loop', '--timestamp'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  for (let i = 0; !out.includes("'metadata-change'"); i++) {
    if (i >= 100 || child.exitCode !== null) throw new Error(`virsh event is not listening: ${out}`);
    sh('virsh', ['-q', 'desc', vm.LIBVIRT_DOMAIN!, '--live', '--title', `strongbox probe ${i}`]);
    await sleep(100);
  }
  return async () => {
    child.kill('SIGINT');
    if (child.exitCode === null) await once(child, 'close');
    return [...out.matchAll(/^(\S+) (\S+)\+0000: event 'lifecycle' for domain '[^']*': (\w+)/gm)].map(([, day, time, event]) => ({
      event: event!, at: Date.parse(`${day}T${time}Z`),
    }));
  };
}

const chainOf = (image: string) =>
  (JSON.parse(sh('qemu-img', ['info', '--backing-chain', '--output=json', '-U', image])) as Array<{ filename: string }>).map((l) => l.filename);

/** The disks as the guest sees them, kept in step with every guest write (the VM runs no OS). */
const expected: Record<string, string> = {};
function guestWrite(target: 'vda' | 'vdb', pattern: number, offset: number, length: number) {
  const dev = `/machine/peripheral/virtio-disk${target === 'vda' ? 0 : 1}/virtio-backend`;
  const out = sh('virsh', ['qemu-monitor-command', vm.LIBVIRT_DOMAIN, '--hmp', `qemu-io -d ${dev} "write -P ${pattern} ${offset} ${length}"`]);
  expect(out).not.toMatch(/error/i);
  const fd = openSync(expected[target]!, 'r+');
  writeSync(fd, Buffer.alloc(length, pattern), 0, length, offset);
  closeSync(fd);
}

beforeAll(async () => {
  releaseDomain = await holdLab('libvirt');
  ssh = await lab('sshd');
  vm = await labCommand('libvirt', 'reset-domain');
  tmp = mkdtempSync(path.join(os.tmpdir(), 'sb-ssh-task-'));
  // The domain idles in its firmware: its disks are what the lab wrote until we write more.
  for (const [target, image] of [['vda', vm.LIBVIRT_ROOT_DISK], ['vdb', vm.LIBVIRT_EPHEMERAL_DISK]] as const) {
    expected[target] = path.join(tmp, `expected-${target}.raw`);
    sh('qemu-img', ['convert', '-U', '-O', 'raw', image!, expected[target]!]);
  }

  t = await startSimulator();
  // Nova's view of the lab domain: an image-booted server on sim-compute-1 whose libvirt name and
  // UUID are the domain's.
  const st = t.sim.state;
  const template = st.servers.get(t.seed.servers['db-1']!)!;
  st.servers.set(vm.LIBVIRT_UUID!, {
    ...template, id: vm.LIBVIRT_UUID!, name: 'kvm-1', instanceName: vm.LIBVIRT_DOMAIN!, host: 'sim-compute-1', zone: 'nova', bdms: [],
  });

  const db = await createTestDatabase();
  drop = db.drop;
  orm = await openOrm(db.url);
  const em = systemFork(orm);
  const cloud = em.create(Cloud, { name: 'kvm', keystoneUrl: t.sim.keystoneUrl, region: 'RegionOne', mode: 'SSH_TRANSFER' });
  em.create(CloudAuthDomain, { cloud, name: 'Default', username: t.seed.admin.username, password: secrets.seal(t.seed.admin.password), defaultProject: 'admin' });
  const dest = em.create(BackupDestination, { name: 'local', kind: 'FILE_SYSTEM', url: `file://${tmp}/repo`, chunkSizeBytes: 64 << 10 });
  await em.flush();
  cloudId = cloud.id;
  destinationId = dest.id;
  await syncInventory({ orm, secrets }, cloud.id);
  const em2 = systemFork(orm);
  kvm = await em2.findOneOrFail(Instance, { externalId: vm.LIBVIRT_UUID }, { filters: false });
  const hv = await em2.findOneOrFail(Hypervisor, { cloud: cloudId, hostname: 'sim-compute-1' }, { filters: false });
  Object.assign(hv, { hostIp: ssh.SSH_HOST, sshPort: Number(ssh.SSH_PORT), sshUser: ssh.SSH_USER, sshKeyPath: ssh.SSH_KEY, pinnedHostKey: null });
  await em2.flush();

  const deps = { secrets, workers: 1, http: { timeoutMs: 5000, retries: 0 }, hypervisorWorkDir: ssh.SSH_WORK_DIR };
  mover = await startDataMover({ orm, databaseUrl: db.url, executors: { BACKUP: backupExecutor(deps) }, publisher: { publish: async () => {} }, name: 'ssh-mover' });
}, 900_000);

/** The RBD-backed disk attached to the lab domain by the RBD test (removed in afterAll). */
let rbdDisk: { spec: string; secret: string; xml: string; conf: string } | undefined;
const rbdCli = (...args: string[]) => execFileSync('rbd', ['-c', rbdDisk!.conf, ...args], { encoding: 'utf8', maxBuffer: 256 * MiB });
function removeRbdImage(spec: string) {
  try {
    rbdCli('snap', 'purge', '--no-progress', spec);
    rbdCli('rm', '--no-progress', spec);
  } catch {
    /* not there */
  }
}

const snaps = () => (JSON.parse(rbdCli('snap', 'ls', '--format', 'json', rbdDisk!.spec)) as Array<{ name: string }>).map((x) => x.name);
/** sha256 of an RBD snapshot of the attached image (what its restore must equal). */
async function snapSha(snap: string) {
  const f = path.join(tmp, `${snap}.ref`);
  rbdCli('export', '--no-progress', `${rbdDisk!.spec}@${snap}`, f);
  return sha256File(f);
}
/** A guest write to the RBD disk (vdc). */
const rbdWrite = (pattern: number, offset: number, length: number) =>
  expect(sh('virsh', ['qemu-monitor-command', vm.LIBVIRT_DOMAIN, '--hmp', `qemu-io -d /machine/peripheral/virtio-disk2/virtio-backend "write -P ${pattern} ${offset} ${length}"`])).not.toMatch(/error/i);

/**
 * When an RBD snapshot was created, to the nanosecond (`rbd snap ls` prints whole seconds): its
 * record in the image header's omap, `snapshot_<id>` (cls_rbd_snap, encoding v8: id, name, size,
 * protection, flags, namespace, then the timestamp as seconds + nanoseconds), in ms.
 */
function rbdSnapCreatedAt(snapName: string): number {
  const spec = rbdDisk!.spec;
  const imageId = (JSON.parse(rbdCli('info', '--format', 'json', spec)) as { id: string }).id;
  const snap = (JSON.parse(rbdCli('snap', 'ls', '--format', 'json', spec)) as Array<{ id: number; name: string }>).find((x) => x.name === snapName)!;
  const file = path.join(tmp, `${snapName}.omap`);
  execFileSync('rados', ['-c', rbdDisk!.conf, '-p', spec.split('/')[0]!, 'getomapval', `rbd_header.${imageId}`, `snapshot_${snap.id.toString(16).padStart(16, '0')}`, file], { stdio: 'ignore' });
  const b = readFileSync(file);
  expect(b[0]).toBe(8); // the encoding read here
  let at = 6 + 8; // struct header (version, compat, length), id
  at += 4 + b.readUInt32LE(at) + 8 + 1 + 8; // name, image size, protection status, flags
  at += 6 + b.readUInt32LE(at + 2); // snapshot namespace (its own struct header)
  return b.readUInt32LE(at) * 1000 + b.readUInt32LE(at + 4) / 1e6;
}

/**
 * One point in time across the file disks and the RBD disk: the domain was paused once and resumed
 * once, and both the RBD snapshot and the libvirt checkpoint were created in between. The upper
 * bound is exact for the RBD snapshot (the Resumed event is printed after the resume, which follows
 * every snapshot); the lower bound is taken from the pause's whole second (virsh event prints the
 * Suspended event when it receives it, a few ms after the pause) as is the checkpoint's creation
 * time (whole seconds). The domain runs again.
 */
function expectOnePoint(backup: Backup, events: Lifecycle[]) {
  const { fromSecond, resumed } = expectSnapshotInPause(`strongbox-${backup.id}`, events);
  const vda = backup.disks.getItems().find((d) => d.name === 'vda')!;
  const created = Number(/<creationTime>(\d+)<\/creationTime>/.exec((JSON.parse(vda.checkpoint!) as { xml: string }).xml)![1]) * 1000;
  expect(created).toBeGreaterThanOrEqual(fromSecond);
  expect(created).toBeLessThanOrEqual(resumed);
  expect(backup.metadata['consistency']).toMatchObject({ level: 'CRASH_CONSISTENT', hold: 'PAUSE', sources: 2, heldMs: expect.any(Number) });
}

/** One pause and one resume, the RBD snapshot `snap` created in between, the domain running again. */
function expectSnapshotInPause(snap: string, events: Lifecycle[]) {
  expect(events.map((e) => e.event)).toEqual(['Suspended', 'Resumed']);
  const [paused, resumed] = [events[0]!.at, events[1]!.at];
  const fromSecond = Math.floor(paused / 1000) * 1000;
  const snapAt = rbdSnapCreatedAt(snap);
  expect(snapAt).toBeGreaterThanOrEqual(fromSecond);
  expect(snapAt).toBeLessThanOrEqual(resumed);
  expect(domstate()).toBe('running');
  return { fromSecond, resumed };
}

afterAll(async () => {
  if (rbdDisk) {
    // A guest idling in its firmware never acknowledges a hot unplug: stop the domain to free the
    // image (the lab's ensure/reset-domain starts it again for the next user).
    execFileSync('virsh', ['-q', 'destroy', vm.LIBVIRT_DOMAIN!], { stdio: 'ignore' });
    execFileSync('virsh', ['-q', 'secret-undefine', rbdDisk.secret], { stdio: 'ignore' });
    removeRbdImage(rbdDisk.spec);
  }
  releaseDomain?.();
  await mover?.stop();
  await orm?.close();
  await drop?.();
  await t?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

async function backupTask(): Promise<Task> {
  const id = await systemFork(orm).transactional(async (tx) => {
    const task = await createTask(tx as never, {
      type: 'BACKUP', cloud: tx.getReference(Cloud, cloudId), project: kvm.project, instance: kvm, destination: tx.getReference(BackupDestination, destinationId),
      maxAttempts: 1, priority: 60, params: { type: 'AUTO' },
    }, null);
    return task.id;
  });
  return taskEnded(orm, id, 120_000);
}

/** Each disk of the backup restored from the repository to a file, by disk name. */
async function restoredSha(backup: Backup): Promise<Record<string, string>> {
  const em = systemFork(orm);
  const repo = await openDestinationRepository(await em.findOneOrFail(BackupDestination, destinationId), secrets, { workers: 1 });
  try {
    const out: Record<string, string> = {};
    for (const d of backup.disks.getItems()) {
      const file = path.join(tmp, `${backup.id}-${d.name}.raw`);
      await repo.restore(backup.repositoryBackupId!, d.position, { kind: 'file', path: file });
      out[d.name] = await sha256File(file);
    }
    return out;
  } finally {
    await repo.close();
  }
}

async function expectedSha() {
  return { vda: await sha256File(expected.vda!), vdb: await sha256File(expected.vdb!) };
}

describe('BACKUP task (SSH transfer from a libvirt/KVM hypervisor)', { timeout: 300_000 }, () => {
  let first: Backup;
  let last: Backup;

  it('a full backup reads the Nova root and ephemeral disks from the hypervisor and pins its host key', async () => {
    const before = blklist();
    const stop = await watchLifecycle();
    const task = await backupTask();
    // Both file disks are in one atomic libvirt operation: one snapshot, no pause needed.
    expect(await stop()).toEqual([]);
    expect(task.error ?? null).toBeNull();
    expect(task.state).toBe('SUCCEEDED');
    expect(Object.keys(task.phaseSeconds)).toEqual(expect.arrayContaining(['metadata', 'snapshot', 'store', 'cleanup']));
    const em = systemFork(orm);
    first = await em.findOneOrFail(Backup, { task: task.id }, { populate: ['disks'], filters: false });
    expect(first).toMatchObject({ state: 'AVAILABLE', type: 'FULL', note: null });
    expect(first.disks.getItems().map((d) => [d.position, d.name, d.kind, d.bootIndex ?? null])).toEqual([
      [0, 'vda', 'NOVA_ROOT', 0],
      [1, 'vdb', 'NOVA_EPHEMERAL', null],
    ]);
    expect(first.disks.getItems().every((d) => !!d.checkpoint)).toBe(true);
    expect(first.frontEndBytes).toBe(BigInt(64 * MiB + 32 * MiB));
    expect((first.metadata as { server: { name: string } }).server.name).toBe('kvm-1');
    // The lab's guest has no agent: not quiesced.
    expect(first.metadata['consistency']).toEqual({ level: 'CRASH_CONSISTENT', hold: 'NONE', heldMs: null, sources: 1 });
    expect(await restoredSha(first)).toEqual(await expectedSha());
    const hv = await em.findOneOrFail(Hypervisor, { cloud: cloudId, hostname: 'sim-compute-1' }, { filters: false });
    expect(hv.pinnedHostKey).toBe(ssh.SSH_HOST_KEY_SHA256);
    // The VM runs on exactly Nova's chain; what tracks changes is a bitmap inside Nova's qcow2, and
    // libvirt keeps no checkpoint metadata that could stop Nova from undefining the domain.
    expect(blklist()).toBe(before);
    expect(checkpoints()).toBe('');
    expect(bitmapsOf('vda')).toEqual([`sb-${first.id}`]);
    expect(sh('ls', [ssh.SSH_WORK_DIR!]).trim()).toBe('');
  });

  it('an incremental backup reads only what the guest wrote, and restores to the disks of its time', async () => {
    const nova = { vda: chainOf(vm.LIBVIRT_ROOT_DISK!), vdb: chainOf(vm.LIBVIRT_EPHEMERAL_DISK!) };
    const before = blklist();
    guestWrite('vda', 0xd1, 3 * MiB, 128 * 1024);
    guestWrite('vdb', 0xd2, 20 * MiB, 64 * 1024);
    const task = await backupTask();
    expect(task.error ?? null).toBeNull();
    expect(task.state).toBe('SUCCEEDED');
    const second = await systemFork(orm).findOneOrFail(Backup, { task: task.id }, { populate: ['disks'], filters: false });
    expect(second).toMatchObject({ state: 'AVAILABLE', type: 'INCREMENTAL', note: null });
    expect(second.parent?.id).toBe(first.id);
    expect(second.readBytes).toBe(BigInt(128 * 1024 + 64 * 1024));
    expect(await restoredSha(second)).toEqual(await expectedSha());
    // Nova's own files are still the VM's chain below anything of ours.
    expect(chainOf(vm.LIBVIRT_ROOT_DISK!)).toEqual(nova.vda);
    expect(chainOf(vm.LIBVIRT_EPHEMERAL_DISK!)).toEqual(nova.vdb);
    expect(blklist()).toBe(before);
    expect(checkpoints()).toBe('');
    expect(bitmapsOf('vda')).toEqual([`sb-${second.id}`]);
    last = second;
  });

  it('with a netcat port configured, disk data goes through a plain TCP relay on it: a port taken by something else fails the backup, a free one gives a byte-identical incremental', async () => {
    const setNetcatPort = (netcatPort: number | null) => systemFork(orm).nativeUpdate(Hypervisor, { cloud: cloudId, hostname: 'sim-compute-1' }, { netcatPort });
    // Something that is not the relay holds the port: the data mover connects to it and fails.
    let connections = 0;
    const squatter = createServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => squatter.listen(0, ssh.SSH_HOST, resolve));
    const taken = (squatter.address() as AddressInfo).port;
    guestWrite('vda', 0xc1, 9 * MiB, 64 * 1024);
    try {
      await setNetcatPort(taken);
      const failed = await backupTask();
      expect(failed.state).toBe('FAILED');
      expect(connections).toBeGreaterThan(0);
    } finally {
      await new Promise((resolve) => squatter.close(resolve));
    }
    expect(checkpoints()).toBe('');
    expect(bitmapsOf('vda')).toEqual([`sb-${last.id}`]);
    // A free port: the relay serves the export; the incremental carries the failed run's write too.
    const free = createServer();
    await new Promise<void>((resolve) => free.listen(0, ssh.SSH_HOST, resolve));
    const port = (free.address() as AddressInfo).port;
    await new Promise((resolve) => free.close(resolve));
    try {
      await setNetcatPort(port);
      const task = await backupTask();
      expect(task.error ?? null).toBeNull();
      const next = await systemFork(orm).findOneOrFail(Backup, { task: task.id }, { populate: ['disks'], filters: false });
      expect(next).toMatchObject({ state: 'AVAILABLE', type: 'INCREMENTAL' });
      expect(next.readBytes).toBe(BigInt(64 * 1024));
      expect(await restoredSha(next)).toEqual(await expectedSha());
      last = next;
    } finally {
      await setNetcatPort(null);
    }
    // The relay went with the job.
    expect(sh('ls', [ssh.SSH_WORK_DIR!]).trim()).toBe('');
  });

  it('a run whose record is refused after the checkpoint was made leaves the parent checkpoint the base: the next incremental restores byte-identical', async () => {
    guestWrite('vda', 0xa1, 5 * MiB, 64 * 1024);
    const allow = await refuseBackupRecords(orm);
    let failed: Task;
    try {
      failed = await backupTask();
    } finally {
      await allow();
    }
    expect(failed.state).toBe('FAILED');
    const lost = await systemFork(orm).findOneOrFail(Backup, { task: failed.id }, { filters: false });
    expect(lost.state).toBe('FAILED');
    expect(lost.note).toContain(REFUSAL);
    // The new checkpoint went with its bitmap; the parent's is still the one tracking changes.
    expect(checkpoints()).toBe('');
    expect(bitmapsOf('vda')).toEqual([`sb-${last.id}`]);
    guestWrite('vda', 0xa2, 7 * MiB, 64 * 1024);
    const task = await backupTask();
    expect(task.error ?? null).toBeNull();
    const next = await systemFork(orm).findOneOrFail(Backup, { task: task.id }, { populate: ['disks'], filters: false });
    expect(next).toMatchObject({ state: 'AVAILABLE', type: 'INCREMENTAL', note: null });
    expect(next.parent?.id).toBe(last.id);
    expect(next.readBytes).toBe(BigInt(2 * 64 * 1024)); // both writes: the one of the lost run too
    expect(await restoredSha(next)).toEqual(await expectedSha());
    expect(bitmapsOf('vda')).toEqual([`sb-${next.id}`]);
    last = next;
  });

  it('a Nova hard reboot (domain undefined, redefined from Nova\'s XML, restarted) keeps the writes and the incremental chain', async () => {
    guestWrite('vda', 0xe1, 30 * MiB, 64 * 1024);
    sh('virsh', ['-q', 'destroy', vm.LIBVIRT_DOMAIN!]);
    sh('virsh', ['-q', 'undefine', vm.LIBVIRT_DOMAIN!]); // plain undefine: no checkpoint metadata in the way
    sh('virsh', ['-q', 'define', path.join(vm.LIBVIRT_DIR!, 'domain.xml')]);
    sh('virsh', ['-q', 'start', vm.LIBVIRT_DOMAIN!]);
    guestWrite('vdb', 0xe2, 4 * MiB, 64 * 1024);
    const task = await backupTask();
    expect(task.error ?? null).toBeNull();
    const third = await systemFork(orm).findOneOrFail(Backup, { task: task.id }, { populate: ['disks'], filters: false });
    expect(third).toMatchObject({ state: 'AVAILABLE', type: 'INCREMENTAL', note: null });
    expect(third.readBytes).toBe(BigInt(2 * 64 * 1024));
    expect(await restoredSha(third)).toEqual(await expectedSha());
    last = third;
  });

  it('a lost base bitmap falls back to a full read, with the reason on the backup', async () => {
    // Lose the bitmap as a QEMU crash or a migration would: redefine the checkpoint, delete it.
    const vda = last.disks.getItems().find((d) => d.name === 'vda')!;
    const { xml } = JSON.parse(vda.checkpoint!) as { xml: string };
    const file = path.join(tmp, 'lost.xml');
    execFileSync('sh', ['-c', 'cat > "$1"', 'sh', file], { input: xml });
    sh('virsh', ['-q', 'checkpoint-create', vm.LIBVIRT_DOMAIN!, file, '--redefine']);
    sh('virsh', ['-q', 'checkpoint-delete', vm.LIBVIRT_DOMAIN!, `sb-${last.id}`]);
    guestWrite('vda', 0xf1, 10 * MiB, 64 * 1024);
    const task = await backupTask();
    expect(task.error ?? null).toBeNull();
    const fourth = await systemFork(orm).findOneOrFail(Backup, { task: task.id }, { populate: ['disks'], filters: false });
    expect(fourth.state).toBe('AVAILABLE');
    expect(fourth.note).toMatch(new RegExp(`vda: full read, checkpoint sb-${last.id} of the parent backup is unusable: .*bitmap`));
    expect(fourth.readBytes).toBeGreaterThan(BigInt(13 * MiB)); // everything allocated, again
    expect(await restoredSha(fourth)).toEqual(await expectedSha());
    expect(checkpoints()).toBe('');
    expect(bitmapsOf('vda')).toEqual([`sb-${fourth.id}`]);
  });

  it('a hypervisor without SSH settings fails the backup with the reason and changes nothing on the VM', async () => {
    const before = blklist();
    const em = systemFork(orm);
    const hv = await em.findOneOrFail(Hypervisor, { cloud: cloudId, hostname: 'sim-compute-1' }, { filters: false });
    const user = hv.sshUser;
    hv.sshUser = undefined;
    await em.flush();
    try {
      const task = await backupTask();
      expect(task.state).toBe('FAILED');
      const b = await systemFork(orm).findOneOrFail(Backup, { task: task.id }, { filters: false });
      expect(b.state).toBe('FAILED');
      expect(b.note).toMatch(/sim-compute-1 has no SSH settings/);
      expect(blklist()).toBe(before);
    } finally {
      hv.sshUser = user;
      await em.flush();
    }
  });
  it('an RBD-backed Nova disk (images_type=rbd) is read from Ceph with the zone\'s storage provider: its snapshot is the base of the next backup, which reads only the RBD diff', async () => {
    const ceph = await lab('ceph');
    // Nova's images_type=rbd naming, attached live to the running domain as QEMU does (librbd, cephx).
    const spec = `rbd/${vm.LIBVIRT_UUID}_disk.eph1`;
    const key = sh('ceph-authtool', ['-p', ceph.CEPH_KEYRING!, '-n', `client.${ceph.CEPH_USER}`]).trim();
    writeFileSync(path.join(tmp, 'secret.xml'), `<secret ephemeral='no' private='no'><usage type='ceph'><name>strongbox-test ${vm.LIBVIRT_UUID}</name></usage></secret>`);
    const secret = /[0-9a-f-]{36}/.exec(sh('virsh', ['secret-define', path.join(tmp, 'secret.xml')]))![0];
    const xml = path.join(tmp, 'rbd-disk.xml');
    rbdDisk = { spec, secret, xml, conf: ceph.CEPH_CONF! };
    removeRbdImage(spec); // left by an interrupted run (the lab's reset-domain freed it)
    rbdCli('create', '--size', '16M', spec);
    sh('virsh', ['-q', 'secret-set-value', secret, '--base64', key]);
    writeFileSync(xml, `<disk type='network' device='disk'><driver name='qemu' type='raw' cache='none'/>
      <auth username='${ceph.CEPH_USER}'><secret type='ceph' uuid='${secret}'/></auth>
      <source protocol='rbd' name='${spec}'><host name='127.0.0.1' port='6789'/></source><target dev='vdc' bus='virtio'/></disk>`);
    sh('virsh', ['-q', 'attach-device', vm.LIBVIRT_DOMAIN!, xml, '--live']);
    rbdWrite(0x61, 0, 1 * MiB);
    rbdWrite(0x62, 9 * MiB, 256 * 1024);
    // The zone of the instance → the lab cluster.
    const em = systemFork(orm);
    const provider = em.create(StorageProvider, {
      name: 'lab-ceph', cephUser: ceph.CEPH_USER!, keyring: secrets.seal(readFileSync(ceph.CEPH_KEYRING!, 'utf8')),
      cephConf: secrets.seal(`[global]\nmon host = ${ceph.CEPH_MON_HOST}\nms bind ipv6 = false\n`),
    });
    (await em.findOneOrFail(AvailabilityZone, { cloud: cloudId, name: 'nova' }, { filters: false })).storageProvider = provider;
    await em.flush();

    const stop = await watchLifecycle();
    const task = await backupTask();
    const events = await stop();
    expect(task.error ?? null).toBeNull();
    const withRbd = await systemFork(orm).findOneOrFail(Backup, { task: task.id }, { populate: ['disks'], filters: false });
    expect(withRbd.state).toBe('AVAILABLE');
    expectOnePoint(withRbd, events);
    const vdc = withRbd.disks.getItems().find((d) => d.name === 'vdc')!;
    expect(vdc).toMatchObject({ position: 2, kind: 'NOVA_EPHEMERAL' });
    expect(JSON.parse(vdc.checkpoint!)).toEqual({ snap: `strongbox-${withRbd.id}` });
    // What RBD reports allocated (per object, from its start to the end of the last write), no more.
    const allocated = (JSON.parse(rbdCli('diff', '--format', 'json', `${spec}@strongbox-${withRbd.id}`)) as Array<{ length: number }>).reduce((n, e) => n + e.length, 0);
    expect(vdc.readBytes).toBe(BigInt(allocated));
    expect(allocated).toBeLessThan(4 * MiB);
    expect(snaps()).toEqual([`strongbox-${withRbd.id}`]);
    const restored = await restoredSha(withRbd);
    expect(restored.vdc).toBe(await snapSha(`strongbox-${withRbd.id}`));
    expect({ vda: restored.vda, vdb: restored.vdb }).toEqual(await expectedSha());
    // libvirt left the RBD disk alone: no bitmap, no job; the file disks keep theirs.
    expect(checkpoints()).toBe('');
    expect(bitmapsOf('vda')).toEqual([`sb-${withRbd.id}`]);

    rbdWrite(0x63, 512 * 1024, 64 * 1024); // inside data RBD already had: its diff is exact
    guestWrite('vda', 0x64, 12 * MiB, 64 * 1024);
    const stop2 = await watchLifecycle();
    const task2 = await backupTask();
    const events2 = await stop2();
    expect(task2.error ?? null).toBeNull();
    const next = await systemFork(orm).findOneOrFail(Backup, { task: task2.id }, { populate: ['disks'], filters: false });
    expect(next).toMatchObject({ state: 'AVAILABLE', type: 'INCREMENTAL', note: null });
    expectOnePoint(next, events2);
    expect(next.parent?.id).toBe(withRbd.id);
    expect(next.disks.getItems().find((d) => d.name === 'vdc')!.readBytes).toBe(BigInt(64 * 1024)); // only the RBD diff
    expect(next.readBytes).toBe(BigInt(2 * 64 * 1024));
    expect(snaps()).toEqual([`strongbox-${next.id}`]);
    const again = await restoredSha(next);
    expect(again.vdc).toBe(await snapSha(`strongbox-${next.id}`));
    expect({ vda: again.vda, vdb: again.vdb }).toEqual(await expectedSha());
    last = next;
  });

  it('an RBD snapshot refused inside the pause (the image\'s snapshot limit is reached) fails the backup: the domain is resumed, no new checkpoint or snapshot is left, and the next incremental restores byte-identical', async () => {
    const before = snaps();
    guestWrite('vda', 0x71, 14 * MiB, 64 * 1024);
    // The base snapshot fills the limit: `rbd snap create` fails with EDQUOT.
    rbdCli('snap', 'limit', 'set', '--limit', '1', rbdDisk!.spec);
    let failed: Task;
    let events: Lifecycle[];
    try {
      const stop = await watchLifecycle();
      failed = await backupTask();
      events = await stop();
    } finally {
      rbdCli('snap', 'limit', 'clear', rbdDisk!.spec);
    }
    expect(failed.state).toBe('FAILED');
    const lost = await systemFork(orm).findOneOrFail(Backup, { task: failed.id }, { filters: false });
    expect(lost.state).toBe('FAILED');
    expect(lost.note).toMatch(/snap create [\s\S]*Disk quota exceeded/);
    // Paused for the snapshot step and resumed although it failed.
    expect(events.map((e) => e.event)).toEqual(['Suspended', 'Resumed']);
    expect(domstate()).toBe('running');
    // The checkpoint the job made in the same step went with its bitmap; the parent's is the base.
    expect(checkpoints()).toBe('');
    expect(bitmapsOf('vda')).toEqual([`sb-${last.id}`]);
    expect(snaps()).toEqual(before);
    expect(sh('ls', [ssh.SSH_WORK_DIR!]).trim()).toBe('');

    rbdWrite(0x72, 9 * MiB + 128 * 1024, 64 * 1024); // inside data RBD already had: its diff is exact
    const stop = await watchLifecycle();
    const task = await backupTask();
    const again = await stop();
    expect(task.error ?? null).toBeNull();
    const next = await systemFork(orm).findOneOrFail(Backup, { task: task.id }, { populate: ['disks'], filters: false });
    expect(next).toMatchObject({ state: 'AVAILABLE', type: 'INCREMENTAL', note: null });
    expect(next.parent?.id).toBe(last.id);
    expectOnePoint(next, again);
    expect(next.readBytes).toBe(BigInt(2 * 64 * 1024)); // the failed run's vda write and the RBD write
    const restored = await restoredSha(next);
    expect(restored.vdc).toBe(await snapSha(`strongbox-${next.id}`));
    expect({ vda: restored.vda, vdb: restored.vdb }).toEqual(await expectedSha());
    last = next;
  });

  it('a domain someone else paused is backed up without a pause of ours and stays paused', async () => {
    guestWrite('vdb', 0x81, 6 * MiB, 64 * 1024);
    rbdWrite(0x82, 128 * 1024, 64 * 1024);
    sh('virsh', ['-q', 'suspend', vm.LIBVIRT_DOMAIN!]);
    try {
      const stop = await watchLifecycle();
      const task = await backupTask();
      expect(await stop()).toEqual([]);
      expect(task.error ?? null).toBeNull();
      expect(domstate()).toBe('paused');
      const b = await systemFork(orm).findOneOrFail(Backup, { task: task.id }, { populate: ['disks'], filters: false });
      expect(b).toMatchObject({ state: 'AVAILABLE', type: 'INCREMENTAL' });
      expect(b.metadata['consistency']).toEqual({ level: 'CRASH_CONSISTENT', hold: 'NOT_RUNNING', heldMs: null, sources: 2 });
      const restored = await restoredSha(b);
      expect(restored.vdc).toBe(await snapSha(`strongbox-${b.id}`));
      expect({ vda: restored.vda, vdb: restored.vdb }).toEqual(await expectedSha());
    } finally {
      sh('virsh', ['-q', 'resume', vm.LIBVIRT_DOMAIN!]);
    }
  });

  it('the overlay fallback (a libvirt without backup jobs) takes its disk-only snapshot in the same pause as the RBD snapshot; closed without commit, both go', async () => {
    guestWrite('vda', 0x91, 16 * MiB, 64 * 1024);
    rbdWrite(0x92, 9 * MiB, 64 * 1024);
    const before = { snaps: snaps(), disks: blklist() };
    const credentials = {
      host: ssh.SSH_HOST!, port: Number(ssh.SSH_PORT), username: ssh.SSH_USER!, privateKeyPath: ssh.SSH_KEY!, hostKeyFingerprint: ssh.SSH_HOST_KEY_SHA256!,
    };
    const ceph = await lab('ceph');
    const client = await CephClient.open({
      user: ceph.CEPH_USER!, keyring: readFileSync(ceph.CEPH_KEYRING!, 'utf8'), config: `[global]\nmon host = ${ceph.CEPH_MON_HOST}\nms bind ipv6 = false\n`,
      poolStrategy: 'EXCLUDE', pools: [],
    });
    const [pool, image] = rbdDisk!.spec.split('/') as [string, string];
    const control = await HypervisorConnection.connect(credentials);
    // What backup.ts does when CheckpointInstanceBackup.prepare says UNSUPPORTED.
    const files = await SshInstanceBackup.prepare({ credentials, novaUuid: vm.LIBVIRT_UUID!, domainName: vm.LIBVIRT_DOMAIN, backupId: 'overlay1', workDir: ssh.SSH_WORK_DIR, track: false });
    const rbd = await RbdDiskSource.prepare(client, { pool, image, backupId: 'overlay1' });
    try {
      const stop = await watchLifecycle();
      const consistency = await atOnePoint(new Libvirt(control), files.domain, [() => files.snapshot(), () => rbd.snapshot()]);
      expectSnapshotInPause('strongbox-overlay1', await stop());
      expect(consistency).toMatchObject({ level: 'CRASH_CONSISTENT', hold: 'PAUSE', sources: 2 });
      await files.expose();
      await rbd.expose();
      expect(files.disks.map((d) => d.name)).toEqual(['vda', 'vdb']);
      for (const d of files.disks) {
        const out = path.join(tmp, `overlay1-${d.name}.raw`);
        await applySource(out, d);
        expect(await sha256File(out)).toBe(await sha256File(expected[d.name]!));
      }
      const out = path.join(tmp, 'overlay1-vdc.raw');
      await applySource(out, rbd);
      expect(await sha256File(out)).toBe(await snapSha('strongbox-overlay1'));
    } finally {
      control.close();
      await files.close();
      await rbd.close();
      await client.close();
    }
    expect(snaps()).toEqual(before.snaps);
    expect(blklist()).toBe(before.disks);
  });
});
