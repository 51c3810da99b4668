// BACKUP tasks, strategy "disk attachment" with change tracking on Ceph (DISK_ATTACHMENT_CBT): a
// Cinder volume whose type maps to a Ceph pool in a zone with a storage provider is read from the
// real single-node Ceph cluster (RBD snapshot + export-diff) instead of through the proxy; the other
// volume of the instance is still attached to the proxy in the OpenStack simulator.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AvailabilityZone, Backup, BackupDestination, Cloud, CloudAuthDomain, Instance, NodeConfiguration, StorageProvider, VolumeType,
} from '../../src/db/entities/index.ts';
import { openOrm, systemFork, type Orm } from '../../src/db/orm.ts';
import { SecretBox } from '../../src/db/secrets.ts';
import { backupExecutor } from '../../src/engine/backup/backup-executor.ts';
import { openDestinationRepository } from '../../src/engine/backup/destination-repository.ts';
import { startDataMover, type RunningDataMover } from '../../src/engine/data-mover.ts';
import { syncInventory } from '../../src/engine/inventory/sync.ts';
import { encodeExportDiff, type DiffRecord } from '../../src/engine/strategies/rbd/export-diff.ts';
import { createTask } from '../../src/engine/tasks/tasks.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { taskEnded } from '../helpers/task-ended.ts';
import { refuseBackupRecords, REFUSAL } from '../helpers/refuse-backup-record.ts';
import { sha256File } from '../helpers/disk-image.ts';
import { lab } from '../helpers/labs.ts';
import { startSimulator, type TestSim } from '../helpers/simulator.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
let t: TestSim;
let orm: Orm;
let drop: () => Promise<void>;
let mover: RunningDataMover | undefined;
let tmp: string;
let ceph: Record<string, string>;
let cloudId: string;
let destinationId: string;
let web1: Instance;
let spec: string;
const secrets = new SecretBox(randomBytes(32));

const rbd = (...args: string[]) => execFileSync('rbd', ['-c', ceph.CEPH_CONF!, ...args], { encoding: 'utf8', maxBuffer: 64 * MiB });
const writeImage = (records: DiffRecord[]) => execFileSync('rbd', ['-c', ceph.CEPH_CONF!, '--no-progress', 'import-diff', '-', spec], { input: encodeExportDiff(records) });
async function exportSha(snap: string) {
  const f = path.join(tmp, `${snap}.ref`);
  rbd('export', '--no-progress', `${spec}@${snap}`, f);
  return sha256File(f);
}

beforeAll(async () => {
  ceph = await lab('ceph');
  tmp = mkdtempSync(path.join(os.tmpdir(), 'sb-rbd-task-'));
  t = await startSimulator();
  // web-1-data is a Cinder RBD volume: its type is backed by the pool "volumes".
  const cephType = { id: 'c0ffee00-0000-4000-8000-000000000001', name: 'ceph-rbd', description: 'RBD', isPublic: true, extraSpecs: { volume_backend_name: 'ceph' } };
  t.sim.state.volumeTypes.set(cephType.id, cephType);
  const dataId = t.seed.volumes['web-1-data']!;
  t.sim.state.volumes.get(dataId)!.typeId = cephType.id;
  spec = `volumes/volume-${dataId}`;
  rbd('create', '--size', `${t.sim.gibBytes / MiB}M`, spec);
  writeImage([
    { type: 'write', offset: 0, length: 1 * MiB, data: randomBytes(1 * MiB) },
    { type: 'write', offset: 2 * MiB, length: 512 * KiB, data: randomBytes(512 * KiB) },
  ]);

  const db = await createTestDatabase();
  drop = db.drop;
  orm = await openOrm(db.url);
  const em = systemFork(orm);
  const cloud = em.create(Cloud, { name: 'sim-ceph', keystoneUrl: t.sim.keystoneUrl, region: 'RegionOne', mode: 'DISK_ATTACHMENT_CBT' });
  em.create(CloudAuthDomain, { cloud, name: 'Default', username: t.seed.admin.username, password: secrets.seal(t.seed.admin.password), defaultProject: 'admin' });
  const nc = em.create(NodeConfiguration, { name: 'sim-proxy', proxyServerId: t.seed.proxyServerId, attachmentLimit: 4, cloud });
  cloud.nodeConfiguration = nc;
  const dest = em.create(BackupDestination, { name: 'local', kind: 'FILE_SYSTEM', url: `file://${tmp}/repo`, chunkSizeBytes: 64 << 10 });
  await em.flush();
  cloudId = cloud.id;
  destinationId = dest.id;
  await syncInventory({ orm, secrets }, cloud.id);
  const em2 = systemFork(orm);
  const provider = em2.create(StorageProvider, {
    name: 'lab-ceph', cephUser: ceph.CEPH_USER!, keyring: secrets.seal(readFileSync(ceph.CEPH_KEYRING!, 'utf8')),
    cephConf: secrets.seal(`[global]\nmon host = ${ceph.CEPH_MON_HOST}\nms bind ipv6 = false\n`),
  });
  (await em2.findOneOrFail(VolumeType, { cloud: cloudId, name: 'ceph-rbd' }, { filters: false })).cephPool = 'volumes';
  (await em2.findOneOrFail(AvailabilityZone, { cloud: cloudId, name: 'nova' }, { filters: false })).storageProvider = provider;
  await em2.flush();
  web1 = await em2.findOneOrFail(Instance, { externalId: t.seed.servers['web-1']! }, { filters: false });

  const deps = { secrets, wait: { intervalMs: 20, timeoutMs: 1500 }, workers: 1, http: { timeoutMs: 5000, retries: 0 } };
  mover = await startDataMover({ orm, databaseUrl: db.url, executors: { BACKUP: backupExecutor(deps) }, publisher: { publish: async () => {} }, nodeConfiguration: 'sim-proxy', name: 'rbd-mover' });
}, 900_000);

afterAll(async () => {
  await mover?.stop();
  await orm?.close();
  await drop?.();
  await t?.close();
  if (ceph && spec) {
    rbd('snap', 'purge', '--no-progress', spec);
    rbd('rm', '--no-progress', spec);
  }
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

function queueBackup(): Promise<string> {
  return systemFork(orm).transactional(async (tx) => {
    const task = await createTask(tx as never, {
      type: 'BACKUP', cloud: tx.getReference(Cloud, cloudId), project: web1.project, instance: web1, destination: tx.getReference(BackupDestination, destinationId),
      maxAttempts: 1, priority: 60, params: { type: 'AUTO' },
    }, null);
    return task.id;
  });
}

async function backupTask(): Promise<Backup> {
  const id = await queueBackup();
  const task = await taskEnded(orm, id, 120_000);
  expect(task.error ?? null).toBeNull();
  expect(task.state).toBe('SUCCEEDED');
  return systemFork(orm).findOneOrFail(Backup, { task: id }, { populate: ['disks'], filters: false });
}

async function restoredSha(backup: Backup, position: number): Promise<string> {
  const repo = await openDestinationRepository(await systemFork(orm).findOneOrFail(BackupDestination, destinationId), secrets, { workers: 1 });
  try {
    const file = path.join(tmp, `${backup.id}-${position}.raw`);
    await repo.restore(backup.repositoryBackupId!, position, { kind: 'file', path: file });
    return sha256File(file);
  } finally {
    await repo.close();
  }
}

/** DISK_ATTACHMENT_CBT: the root volume (type nfs, no Ceph pool) is scanned whole, and the backup says why. */
const rootScanned = () => `volume ${t.seed.volumes['web-1-root']}: no RBD diff (volume type 'nfs' is mapped to no Ceph pool); read whole through the proxy, changes found by scanning`;

/** What `rbd diff` reports allocated in a snapshot (over-reported per object; a full read reads that). */
const allocated = (snap: string) =>
  (JSON.parse(rbd('diff', '--format', 'json', `${spec}@${snap}`)) as Array<{ length: number }>).reduce((n, e) => n + e.length, 0);
const snaps = () => (JSON.parse(rbd('snap', 'ls', '--format', 'json', spec)) as Array<{ name: string }>).map((s) => s.name);

describe('BACKUP task (disk attachment with Ceph RBD diffs)', { timeout: 300_000 }, () => {
  let first: Backup;
  let second: Backup;

  it('reads the RBD volume from the cluster (the other volume through the proxy) and keeps its snapshot', async () => {
    first = await backupTask();
    expect(first).toMatchObject({ state: 'AVAILABLE', type: 'FULL', note: rootScanned() });
    const data = first.disks.getItems().find((d) => d.position === 1)!;
    expect(data).toMatchObject({ kind: 'CINDER', volumeExternalId: t.seed.volumes['web-1-data'] });
    expect(data.readBytes).toBe(BigInt(allocated(`strongbox-${first.id}`))); // allocated data only
    expect(data.readBytes).toBeLessThan(BigInt(t.sim.gibBytes));
    expect(JSON.parse(data.checkpoint!)).toEqual({ snap: `strongbox-${first.id}` });
    expect(snaps()).toEqual([`strongbox-${first.id}`]);
    expect(await restoredSha(first, 1)).toBe(await exportSha(`strongbox-${first.id}`));
  });

  it('the next backup reads only the RBD diff since the kept snapshot', async () => {
    writeImage([{ type: 'write', offset: 256 * KiB, length: 64 * KiB, data: randomBytes(64 * KiB) }]);
    second = await backupTask();
    expect(second).toMatchObject({ state: 'AVAILABLE', type: 'INCREMENTAL', note: rootScanned() });
    expect(second.parent?.id).toBe(first.id);
    const data = second.disks.getItems().find((d) => d.position === 1)!;
    expect(data.readBytes).toBe(BigInt(64 * KiB));
    expect(snaps()).toEqual([`strongbox-${second.id}`]);
    expect(await restoredSha(second, 1)).toBe(await exportSha(`strongbox-${second.id}`));
  });

  it('a run whose record is refused after its snapshot was taken keeps the old base: the next incremental restores byte-identical', async () => {
    writeImage([{ type: 'write', offset: 512 * KiB, length: 64 * KiB, data: randomBytes(64 * KiB) }]);
    const allow = await refuseBackupRecords(orm);
    let failedId: string;
    try {
      failedId = await queueBackup();
      const task = await taskEnded(orm, failedId, 120_000);
      expect(task.state).toBe('FAILED');
    } finally {
      await allow();
    }
    const lost = await systemFork(orm).findOneOrFail(Backup, { task: failedId }, { filters: false });
    expect(lost.note).toContain(REFUSAL);
    expect(snaps()).toEqual([`strongbox-${second.id}`]); // the new snapshot went, the base stayed
    writeImage([{ type: 'write', offset: 768 * KiB, length: 64 * KiB, data: randomBytes(64 * KiB) }]);
    const next = await backupTask();
    expect(next).toMatchObject({ state: 'AVAILABLE', type: 'INCREMENTAL', note: rootScanned() });
    expect(next.parent?.id).toBe(second.id);
    expect(next.disks.getItems().find((d) => d.position === 1)!.readBytes).toBe(BigInt(2 * 64 * KiB)); // the lost run's write too
    expect(snaps()).toEqual([`strongbox-${next.id}`]);
    expect(await restoredSha(next, 1)).toBe(await exportSha(`strongbox-${next.id}`));
    second = next;
  });

  it('a deleted base snapshot falls back to a full read of the volume, with the reason on the backup', async () => {
    rbd('snap', 'rm', '--no-progress', `${spec}@strongbox-${second.id}`);
    writeImage([{ type: 'write', offset: 3 * MiB, length: 64 * KiB, data: randomBytes(64 * KiB) }]);
    const third = await backupTask();
    expect(third.state).toBe('AVAILABLE');
    expect(third.note).toBe(`volume ${t.seed.volumes['web-1-data']}: base snapshot ${spec}@strongbox-${second.id} no longer exists; full read instead of incremental; ${rootScanned()}`);
    const data = third.disks.getItems().find((d) => d.position === 1)!;
    expect(data.readBytes).toBe(BigInt(allocated(`strongbox-${third.id}`)));
    expect(await restoredSha(third, 1)).toBe(await exportSha(`strongbox-${third.id}`));
  });
});
