// RESTORE of an SSH-transfer backup onto an existing image: the simulator's libvirt compute driver
// makes the instance a real KVM domain booted from a Glance image (raw _base + qcow2 overlay, as
// Nova lays it out) on sim-compute-1, which is the sshd lab host. The instance is backed up (full,
// then incremental after guest writes) and restored: the new server boots from the same image (or
// a mapped one), and only what differs is written into its disk over SSH/NBD. Real PostgreSQL,
// libvirt/KVM, sshd, qemu-nbd and repository; the simulator stands in for the OpenStack APIs.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readdirSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Backup, BackupDestination, Cloud, CloudAuthDomain, Hypervisor, Instance, Restore, type Task } from '../../src/db/entities/index.ts';
import { systemFork, type Orm } from '../../src/db/orm.ts';
import { SecretBox } from '../../src/db/secrets.ts';
import { LibvirtComputeDriver } from '../../src/demo/simulator/libvirt-driver.ts';
import { backupExecutor } from '../../src/engine/backup/backup-executor.ts';
import { openDestinationRepository } from '../../src/engine/backup/destination-repository.ts';
import { restoreExecutor } from '../../src/engine/backup/restore-executor.ts';
import { startDataMover, type RunningDataMover } from '../../src/engine/data-mover.ts';
import { syncInventory } from '../../src/engine/inventory/sync.ts';
import { createTask } from '../../src/engine/tasks/tasks.ts';
import type { ServiceClients } from '../../src/openstack/index.ts';
import { openTestOrm } from '../helpers/database.ts';
import { sha256File } from '../helpers/disk-image.ts';
import { holdLab, lab } from '../helpers/labs.ts';
import { connect, startSimulator, type TestSim } from '../helpers/simulator.ts';
import { taskEnded } from '../helpers/task-ended.ts';

const MiB = 1024 * 1024;
const CHUNK = 64 << 10;
const DISK = 32 * MiB; // flavor disk 8 × the simulator's 4 MiB "GiB"
const secrets = new SecretBox(randomBytes(32));
let t: TestSim;
let driver: LibvirtComputeDriver;
let orm: Orm;
let closeDb: (() => Promise<void>) | undefined;
let mover: RunningDataMover | undefined;
let release: (() => void) | undefined;
let tmp: string;
let ssh: Record<string, string>;
let nova: ServiceClients;
let cloudId: string;
let destinationId: string;
let vm: Instance;
let imageA: string;
let expected: string;
let backedUp: Backup;
const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8' });

/** A 16 MiB raw image: data, a hole, a patterned region, zeros to the end. */
function imageBytes(seed: number): Buffer {
  const b = Buffer.alloc(16 * MiB);
  randomBytes(4 * MiB).copy(b, 0);
  b.fill(seed, 8 * MiB, 10 * MiB);
  return b;
}

async function uploadImage(name: string, bytes: Buffer): Promise<string> {
  const image = await nova.glance.createImage({ name, disk_format: 'raw', container_format: 'bare', visibility: 'public' });
  await nova.glance.upload(image.id, bytes);
  return image.id;
}

/** A write by the guest (the VM idles in its firmware: QEMU's own qemu-io), mirrored in `expected`. */
function guestWrite(domain: string, pattern: number, offset: number, length: number) {
  const out = sh('virsh', ['qemu-monitor-command', domain, '--hmp', `qemu-io -d /machine/peripheral/virtio-disk0/virtio-backend "write -P ${pattern} ${offset} ${length}"`]);
  expect(out).not.toMatch(/error/i);
  const fd = openSync(expected, 'r+');
  writeSync(fd, Buffer.alloc(length, pattern), 0, length, offset);
  closeSync(fd);
}

/** The bytes of a server's root disk as the simulator's hypervisor holds them. */
async function diskSha(serverId: string): Promise<string> {
  const raw = path.join(tmp, `${serverId}.raw`);
  sh('qemu-img', ['convert', '-U', '-O', 'raw', driver.diskPath(serverId), raw]);
  try {
    return await sha256File(raw);
  } finally {
    rmSync(raw, { force: true });
  }
}

beforeAll(async () => {
  release = await holdLab('libvirt');
  await lab('libvirt');
  ssh = await lab('sshd');
  tmp = mkdtempSync(path.join(os.tmpdir(), 'sb-restore-base-'));
  driver = new LibvirtComputeDriver({ instancesDir: path.join(tmp, 'instances') });
  t = await startSimulator({ computeDriver: driver });
  nova = connect(t).clients(connect(t).defaultSession());
  const flavorId = 'sb-kvm-tiny';
  t.sim.state.flavors.set(flavorId, { id: flavorId, name: 'sb.kvm', vcpus: 1, ram: 128, disk: 8, ephemeral: 0, isPublic: true });

  const a = imageBytes(0x5a);
  imageA = await uploadImage('base-a', a);
  const { id } = await nova.nova.createServer({ name: 'vm-a', flavorRef: flavorId, imageRef: imageA, networks: 'none', availability_zone: 'nova' });
  await nova.nova.waitForServer(id, ['ACTIVE'], { intervalMs: 50, timeoutMs: 60_000 });
  expected = path.join(tmp, 'expected.raw');
  writeFileSync(expected, a);
  execFileSync('truncate', ['-s', String(DISK), expected]);

  const db = await openTestOrm();
  closeDb = db.close;
  orm = db.orm;
  const em = systemFork(orm);
  const cloud = em.create(Cloud, { name: 'kvm', keystoneUrl: t.sim.keystoneUrl, region: 'RegionOne', mode: 'SSH_TRANSFER' });
  em.create(CloudAuthDomain, { cloud, name: 'Default', username: t.seed.admin.username, password: secrets.seal(t.seed.admin.password), defaultProject: 'admin' });
  const dest = em.create(BackupDestination, { name: 'local', kind: 'FILE_SYSTEM', url: `file://${tmp}/repo`, chunkSizeBytes: CHUNK });
  await em.flush();
  cloudId = cloud.id;
  destinationId = dest.id;
  await syncInventory({ orm, secrets }, cloud.id);
  const em2 = systemFork(orm);
  vm = await em2.findOneOrFail(Instance, { externalId: id }, { filters: false });
  const hv = await em2.findOneOrFail(Hypervisor, { cloud: cloudId, hostname: 'sim-compute-1' }, { filters: false });
  Object.assign(hv, { hostIp: ssh.SSH_HOST, sshPort: Number(ssh.SSH_PORT), sshUser: ssh.SSH_USER, sshKeyPath: ssh.SSH_KEY, pinnedHostKey: null });
  await em2.flush();

  const deps = {
    secrets, workers: 1, http: { timeoutMs: 5000, retries: 0 }, hypervisorWorkDir: ssh.SSH_WORK_DIR, wait: { intervalMs: 50, timeoutMs: 60_000 },
    defaultProxyServerId: t.seed.proxyServerId,
  };
  mover = await startDataMover({
    orm, databaseUrl: db.url, executors: { BACKUP: backupExecutor(deps), RESTORE: restoreExecutor(deps) }, publisher: { publish: async () => {} }, name: 'restore-base-mover',
  });
}, 900_000);

afterAll(async () => {
  await mover?.stop();
  await driver?.close();
  release?.();
  await closeDb?.();
  await t?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

async function backupTask(): Promise<Task> {
  const id = await systemFork(orm).transactional(async (tx) => {
    const task = await createTask(tx as never, {
      type: 'BACKUP', cloud: tx.getReference(Cloud, cloudId), project: vm.project, instance: vm, destination: tx.getReference(BackupDestination, destinationId),
      maxAttempts: 1, priority: 60, params: { type: 'AUTO' },
    }, null);
    return task.id;
  });
  return taskEnded(orm, id, 180_000);
}

async function restoreTask(name: string, mappings: Restore['mappings'] = {}): Promise<{ task: Task; restore: Restore }> {
  const id = await systemFork(orm).transactional(async (tx) => {
    const b = await tx.findOneOrFail(Backup, backedUp.id, { filters: false });
    const task = await createTask(tx as never, {
      type: 'RESTORE', cloud: tx.getReference(Cloud, cloudId), project: vm.project, instance: vm, backup: b, destination: b.destination,
      maxAttempts: 1, params: { name, mappings },
    }, null, { backup: b, project: vm.project, name, mappings });
    return task.id;
  });
  const task = await taskEnded(orm, id, 180_000);
  return { task, restore: await systemFork(orm).findOneOrFail(Restore, { task: id }, { filters: false }) };
}

const writtenBytes = (note: string | undefined) => Number(/\((\d+) bytes\)/.exec(note ?? '')?.[1] ?? NaN);
const fetchedMiB = (note: string | undefined) => Number(/([\d.]+) MiB fetched from the destination/.exec(note ?? '')?.[1] ?? NaN);
const leftovers = () => readdirSync(ssh.SSH_WORK_DIR!).filter((f) => f.startsWith('strongbox-restore-'));

describe('RESTORE of a Nova root disk onto an existing image (SSH transfer)', { timeout: 300_000 }, () => {
  it('backs up the image-booted instance, then what the guest wrote since', async () => {
    const full = await backupTask();
    expect(full.error ?? null).toBeNull();
    guestWrite(driver.instanceName(vm.externalId), 0xd1, 1 * MiB, 128 << 10);
    guestWrite(driver.instanceName(vm.externalId), 0xd2, 20 * MiB, 64 << 10);
    const incr = await backupTask();
    expect(incr.error ?? null).toBeNull();
    backedUp = await systemFork(orm).findOneOrFail(Backup, { task: incr.id }, { populate: ['disks'], filters: false });
    expect(backedUp).toMatchObject({ type: 'INCREMENTAL', state: 'AVAILABLE' });
    expect(backedUp.disks.getItems().map((d) => [d.kind, d.sizeBytes])).toEqual([['NOVA_ROOT', BigInt(DISK)]]);
    expect((backedUp.metadata as { image: string }).image).toBe(imageA);
    // The backup holds exactly the guest's disk.
    const repo = await openDestinationRepository(await systemFork(orm).findOneOrFail(BackupDestination, destinationId), secrets, { workers: 1 });
    try {
      await repo.restore(backedUp.repositoryBackupId!, 0, { kind: 'file', path: path.join(tmp, 'from-repo.raw') });
    } finally {
      await repo.close();
    }
    expect(await sha256File(path.join(tmp, 'from-repo.raw'))).toBe(await sha256File(expected));
  });

  it('boots the new server from the same image and writes only what differs: byte-exact, no new image', async () => {
    const images = t.sim.counts().images;
    const { task, restore } = await restoreTask('vm-a-same-image');
    expect(task.error ?? null).toBeNull();
    expect(restore.state).toBe('SUCCEEDED');
    expect(Object.keys(task.phaseSeconds)).toEqual(expect.arrayContaining(['image', 'server', 'root-disk']));
    const server = await nova.nova.getServer(restore.resultExternalId!);
    expect(server.status).toBe('ACTIVE');
    expect((server.image as { id: string }).id).toBe(imageA);
    expect(t.sim.counts().images).toBe(images);
    expect(await diskSha(server.id)).toBe(await sha256File(expected));
    expect(restore.note).toMatch(new RegExp(`^root disk: image ${imageA} reused, `));
    // Exactly the chunks the guest wrote: 128 KiB at 1 MiB and 64 KiB at 20 MiB.
    expect(writtenBytes(restore.note)).toBe(192 << 10);
    // Only those chunks came from the destination (compressed: patterns shrink to almost nothing).
    expect(fetchedMiB(restore.note)).toBeLessThanOrEqual(0.19);
    expect(leftovers()).toEqual([]);
  });

  it('with a mapping to another image with other bytes, the restore is still byte-exact (more is written)', async () => {
    const b = imageBytes(0x11);
    const imageB = await uploadImage('base-b', b);
    const images = t.sim.counts().images;
    const { task, restore } = await restoreTask('vm-a-mapped', { images: [{ from: imageA, to: imageB }] });
    expect(task.error ?? null).toBeNull();
    const server = await nova.nova.getServer(restore.resultExternalId!);
    expect((server.image as { id: string }).id).toBe(imageB);
    expect(t.sim.counts().images).toBe(images);
    expect(await diskSha(server.id)).toBe(await sha256File(expected));
    expect(restore.note).toContain(`image ${imageB} reused (mapped from ${imageA})`);
    // The random first 4 MiB and the 2 MiB pattern differ, and the guest's write past the image's end.
    expect(writtenBytes(restore.note)).toBe(6 * MiB + (64 << 10));
    // The backup's random bytes (4 MiB less the guest's 128 KiB) do not compress: that much was
    // fetched, far from the whole disk.
    expect(fetchedMiB(restore.note)).toBeGreaterThanOrEqual(3.87);
    expect(fetchedMiB(restore.note)).toBeLessThan(5);
  });

  it('a restore that fails while writing the disk leaves no server, no qemu-nbd and no domain behind', async () => {
    const imageB = (await nova.glance.listImages()).find((i) => i.name === 'base-b')!.id;
    const servers = t.sim.counts().servers;
    const domains = driver.domains.size;
    // The repository loses its packs: chunks fail once the disk is already served writable.
    const data = path.join(tmp, 'repo', 'data');
    renameSync(data, `${data}.away`);
    try {
      const { task, restore } = await restoreTask('vm-a-fails', { images: [{ from: imageA, to: imageB }] });
      expect(task.state).toBe('FAILED');
      expect(task.error).toMatch(/pack|data\//i);
      expect(Object.keys(task.phaseSeconds)).toContain('root-disk');
      expect(restore.state).toBe('FAILED');
    } finally {
      renameSync(`${data}.away`, data);
    }
    const end = Date.now() + 30_000;
    while ((t.sim.counts().servers !== servers || driver.domains.size !== domains) && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
    expect(t.sim.counts().servers).toBe(servers);
    expect(driver.domains.size).toBe(domains);
    expect(leftovers()).toEqual([]);
    expect(sh('sh', ['-c', 'pgrep -f "[q]emu-nbd.*strongbox-restore" || true']).trim()).toBe('');
  });

  it('with the hypervisors of the zone lacking SSH settings, the root disk is uploaded as a new image, and the note names them', async () => {
    const em = systemFork(orm);
    const hv = await em.findOneOrFail(Hypervisor, { cloud: cloudId, hostname: 'sim-compute-1' }, { filters: false });
    const settings = { sshUser: hv.sshUser, sshKeyPath: hv.sshKeyPath };
    Object.assign(hv, { sshUser: null, sshKeyPath: null });
    await em.flush();
    try {
      const images = t.sim.counts().images;
      const { task, restore } = await restoreTask('vm-a-no-ssh');
      expect(task.error ?? null).toBeNull();
      expect(restore.note).toBe('root disk: uploaded as a new image (hypervisor sim-compute-1 of zone nova has no SSH settings)');
      expect(t.sim.counts().images).toBe(images + 1);
      const server = await nova.nova.getServer(restore.resultExternalId!);
      expect((server.image as { id: string }).id).not.toBe(imageA);
      expect(await diskSha(server.id)).toBe(await sha256File(expected));
    } finally {
      Object.assign(hv, settings);
      await em.flush();
    }
  });

  it('with the image gone from Glance and no mapping, the root disk is uploaded as a new image, and the note says why', async () => {
    await nova.glance.deleteImage(imageA);
    const images = t.sim.counts().images;
    const { task, restore } = await restoreTask('vm-a-uploaded');
    expect(task.error ?? null).toBeNull();
    expect(restore.note).toBe(`root disk: uploaded as a new image (image ${imageA} is neither active in the target cloud nor mapped)`);
    expect(t.sim.counts().images).toBe(images + 1);
    const server = await nova.nova.getServer(restore.resultExternalId!);
    const uploaded = (server.image as { id: string }).id;
    expect(uploaded).not.toBe(imageA);
    expect((await nova.glance.getImage(uploaded)).size).toBe(DISK);
    expect(await diskSha(server.id)).toBe(await sha256File(expected));
  });
});
