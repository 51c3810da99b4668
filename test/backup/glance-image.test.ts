// "Download image from Glance" and restores that need an image: the base image of an
// image-booted instance stored with FULL backups (checked against Glance's checksums), referenced
// by incrementals, uploaded again when the target cloud lacks it; Nova root/ephemeral disks
// restored through Glance and Cinder; a failed upload leaves no image behind; a stalled download
// fails the backup. Real PostgreSQL,
// the OpenStack simulator (images as real files) and a real repository in a temporary folder.
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Backup, BackupDestination, BackupDisk, Cloud, Instance, Restore, Task,
} from '../../src/db/entities/index.ts';
import { systemFork, type Orm } from '../../src/db/orm.ts';
import { SecretBox } from '../../src/db/secrets.ts';
import { backupExecutor } from '../../src/engine/backup/backup-executor.ts';
import { openDestinationRepository } from '../../src/engine/backup/destination-repository.ts';
import type { BackedUpImage } from '../../src/engine/backup/glance-image.ts';
import { restoreExecutor } from '../../src/engine/backup/restore-executor.ts';
import { FileDiskSource } from '../../src/engine/repository/index.ts';
import { captureInstance } from '../../src/engine/strategies/disk-attachment/instance-metadata.ts';
import { createTask } from '../../src/engine/tasks/tasks.ts';
import { startSimBackupWorld, type SimBackupWorld } from '../helpers/sim-backup-world.ts';
import { connect, type TestSim } from '../helpers/simulator.ts';

let w: SimBackupWorld;
let t: TestSim;
let orm: Orm;
let repoDir: string;
let cloudId: string;
let destinationId: string;
let db1: Instance;
const secrets = new SecretBox(randomBytes(32));
const wait = { intervalMs: 20, timeoutMs: 3000 };
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

beforeAll(async () => {
  const deps = { secrets, wait, workers: 1, http: { timeoutMs: 5000, retries: 0 } };
  w = await startSimBackupWorld({ name: 'glance', secrets, cloud: { downloadImage: true }, executors: { BACKUP: backupExecutor(deps), RESTORE: restoreExecutor(deps) } });
  ({ t, orm, repoDir, cloudId, destinationId } = w);
  db1 = await w.instance('db-1');
});
afterAll(() => w?.close());

async function queueBackup(type: 'AUTO' | 'FULL' = 'AUTO', instance = db1): Promise<string> {
  return systemFork(orm).transactional(async (tx) => {
    const task = await createTask(tx as never, {
      type: 'BACKUP', cloud: tx.getReference(Cloud, cloudId), project: instance.project, instance, destination: tx.getReference(BackupDestination, destinationId),
      maxAttempts: 1, priority: 60, params: { type },
    }, null);
    return task.id;
  });
}

async function queueRestore(backupId: string, name: string, mappings: Restore['mappings'] = {}): Promise<string> {
  return systemFork(orm).transactional(async (tx) => {
    const b = await tx.findOneOrFail(Backup, backupId, { filters: false });
    const task = await createTask(tx as never, {
      type: 'RESTORE', cloud: tx.getReference(Cloud, cloudId), project: db1.project, instance: db1, backup: b, destination: b.destination,
      maxAttempts: 1, params: { name, mappings },
    }, null, { backup: b, project: db1.project, name, mappings });
    return task.id;
  });
}

const finished = (taskId: string, ms?: number) => w.finished(taskId, ms);

async function waitForPhase(taskId: string, phase: string) {
  const end = Date.now() + 20_000;
  while ((await systemFork(orm).findOneOrFail(Task, taskId, { filters: false })).phase !== phase && Date.now() < end) await new Promise((r) => setTimeout(r, 25));
}

const imageBytes = () => readFileSync(t.sim.files.imagePath(t.seed.imageId));
const downloads = () => t.sim.requests.filter((r) => r.method === 'GET' && /\/v2\/images\/[^/]+\/file$/.test(r.path)).length;
const admin = () => connect(t).clients(connect(t).defaultSession());

async function restoreDisk(repositoryBackupId: string, position: number): Promise<Buffer> {
  const repo = await openDestinationRepository(await systemFork(orm).findOneOrFail(BackupDestination, destinationId), secrets, { workers: 1 });
  try {
    const out = path.join(repoDir, `disk-${repositoryBackupId}-${position}.raw`);
    await repo.restore(repositoryBackupId, position, { kind: 'file', path: out });
    return readFileSync(out);
  } finally {
    await repo.close();
  }
}

describe('download image from Glance', () => {
  let full: Backup;
  let incremental: Backup;
  const original = { sha: '', md5: '' };

  it('a FULL backup of an image-booted instance stores the image as an extra disk, with its properties', async () => {
    const before = t.sim.counts();
    original.sha = sha(imageBytes());
    const task = await finished(await queueBackup('FULL'));
    expect(task.error ?? null).toBeNull();
    expect(task.state).toBe('SUCCEEDED');
    expect(t.sim.counts()).toEqual(before);
    full = await systemFork(orm).findOneOrFail(Backup, { task: task.id }, { populate: ['disks'], filters: false });
    expect(full.type).toBe('FULL');
    expect(full.disks.getItems().map((d) => [d.position, d.kind, d.name])).toEqual([
      [0, 'CINDER', 'db-1-data'],
      [1, 'IMAGE', t.seed.imageId],
    ]);
    const imageRow = full.disks.getItems()[1]!;
    expect(imageRow.sizeBytes).toBe(BigInt(imageBytes().length));
    const glance = (full.metadata as { glanceImage: BackedUpImage }).glanceImage;
    const seeded = t.sim.state.images.get(t.seed.imageId)!;
    expect(glance).toMatchObject({
      imageId: t.seed.imageId, name: 'sim-tiny-raw', diskFormat: 'raw', containerFormat: 'bare', minDisk: 0, minRam: 0,
      size: seeded.size, checksum: seeded.checksum, osHashAlgo: 'sha512', osHashValue: seeded.sha512, position: 1,
      properties: { 'owner_specified.openstack.object': 'images/sim-tiny-raw' },
    });
    expect(glance.heldBy).toBeUndefined();
    // The repository's copy is the image, byte for byte.
    expect(sha(await restoreDisk(full.repositoryBackupId!, 1))).toBe(original.sha);
    // The root disk itself is not covered, and the note says so.
    expect(full.note).toMatch(/nova root disk .*not a Cinder volume/);
  });

  it('an incremental does not download the image again: it names the backup that holds it', async () => {
    const before = downloads();
    const task = await finished(await queueBackup('AUTO'));
    expect(task.error ?? null).toBeNull();
    incremental = await systemFork(orm).findOneOrFail(Backup, { task: task.id }, { populate: ['disks'], filters: false });
    expect(incremental.type).toBe('INCREMENTAL');
    expect(incremental.disks.getItems().map((d) => d.kind)).toEqual(['CINDER']);
    expect((incremental.metadata as { glanceImage: BackedUpImage }).glanceImage).toMatchObject({ imageId: t.seed.imageId, heldBy: full.id });
    expect(downloads()).toBe(before);
  });

  it('an image whose bytes do not match its checksum fails the backup: no record, no leftovers', async () => {
    const before = t.sim.counts();
    const file = t.sim.files.imagePath(t.seed.imageId);
    const good = readFileSync(file);
    const bad = Buffer.from(good);
    bad[1000] ^= 0xff;
    writeFileSync(file, bad);
    try {
      const repo = await openDestinationRepository(await systemFork(orm).findOneOrFail(BackupDestination, destinationId), secrets, { workers: 1 });
      const records = (await repo.list()).length;
      await repo.close();
      const task = await finished(await queueBackup('FULL'));
      expect(task.state).toBe('FAILED');
      expect(task.error).toMatch(/md5 .* is not the image's checksum/);
      const row = await systemFork(orm).findOneOrFail(Backup, { task: task.id }, { filters: false });
      expect(row.state).toBe('FAILED');
      const again = await openDestinationRepository(await systemFork(orm).findOneOrFail(BackupDestination, destinationId), secrets, { workers: 1 });
      expect((await again.list()).length).toBe(records);
      await again.close();
    } finally {
      writeFileSync(file, good);
    }
    expect(t.sim.counts()).toEqual(before);
  });

  it('a backup cancelled during the store phase (image download hung) ends CANCELLED with no leftovers', async () => {
    const before = t.sim.counts();
    t.sim.addFault({ method: 'GET', path: '/v2/images/[^/]+/file$', hang: true, times: 1 });
    try {
      const taskId = await queueBackup('FULL');
      await waitForPhase(taskId, 'store');
      expect((await systemFork(orm).findOneOrFail(Task, taskId, { filters: false })).phase).toBe('store');
      await systemFork(orm).nativeUpdate(Task, { id: taskId }, { cancelRequested: true });
      const task = await finished(taskId);
      expect(task.state).toBe('CANCELLED');
      expect((await systemFork(orm).findOneOrFail(Backup, { task: taskId }, { filters: false })).state).toBe('FAILED');
    } finally {
      t.sim.faults.clear();
    }
    expect(t.sim.counts()).toEqual(before);
    expect(await admin().nova.listVolumeAttachments(t.seed.proxyServerId)).toEqual([]);
  });

  it('restore reuses the image when it is active in the target cloud', async () => {
    const before = t.sim.counts();
    const taskId = await queueRestore(incremental.id, 'db-1-same-image');
    const task = await finished(taskId);
    expect(task.error ?? null).toBeNull();
    const restore = await systemFork(orm).findOneOrFail(Restore, { task: taskId }, { filters: false });
    const server = await admin().nova.getServer(restore.resultExternalId!);
    expect(server.image).toMatchObject({ id: t.seed.imageId });
    expect(t.sim.counts()).toMatchObject({ images: before.images, servers: before.servers + 1 });
  });

  it('a download that stalls fails the FULL backup once the server has been silent for the HTTP timeout', async () => {
    // 64 KiB of the 1 MiB image, then silence on an open connection (the client's limit is 5 s).
    t.sim.addFault({ method: 'GET', path: '/v2/images/[^/]+/file$', stallAfterBytes: 64 << 10, times: 1 });
    try {
      const task = await finished(await queueBackup('FULL'), 60_000);
      expect(task.state).toBe('FAILED');
      expect(task.error).toMatch(/image GET \S+\/v2\/images\/[^/]+\/file: no answer in time \(the body stalled\)/);
      const backup = await systemFork(orm).findOneOrFail(Backup, { task: task.id }, { filters: false });
      expect(backup.state).toBe('FAILED');
    } finally {
      t.sim.faults.clear();
    }
  });

  it('a failed image upload leaves no image, volume or server behind', async () => {
    await admin().glance.deleteImage(t.seed.imageId);
    const before = t.sim.counts();
    t.sim.addFault({ method: 'PUT', path: '/v2/images/[^/]+/file$', status: 500, times: 1 });
    try {
      const taskId = await queueRestore(incremental.id, 'db-1-doomed');
      const task = await finished(taskId);
      expect(task.state).toBe('FAILED');
      expect(task.error).toMatch(/image.*500|500.*image/);
      expect((await systemFork(orm).findOneOrFail(Restore, { task: taskId }, { filters: false })).state).toBe('FAILED');
    } finally {
      t.sim.faults.clear();
    }
    expect(t.sim.counts()).toEqual(before);
  });

  it('an upload whose connection breaks midway leaves no image behind either', async () => {
    const before = t.sim.counts();
    t.sim.addFault({ method: 'PUT', path: '/v2/images/[^/]+/file$', dropAfterBytes: 300 << 10, times: 1 });
    try {
      const taskId = await queueRestore(incremental.id, 'db-1-broken-upload');
      const task = await finished(taskId);
      expect(task.state).toBe('FAILED');
      expect(task.error).toMatch(/image PUT \/\S+\/v2\/images\/[^/]+\/file: connection failed/);
    } finally {
      t.sim.faults.clear();
    }
    expect(t.sim.counts()).toEqual(before);
  });

  it('restore uploads the image from the backup when the cloud has lost it; the server boots from it', async () => {
    expect(t.sim.state.images.has(t.seed.imageId)).toBe(false);
    const before = t.sim.counts();
    const taskId = await queueRestore(incremental.id, 'db-1-reimaged');
    const task = await finished(taskId);
    expect(task.error ?? null).toBeNull();
    expect(Object.keys(task.phaseSeconds)).toEqual(expect.arrayContaining(['volumes', 'restore', 'image', 'server']));
    const restore = await systemFork(orm).findOneOrFail(Restore, { task: taskId }, { filters: false });
    const server = await admin().nova.getServer(restore.resultExternalId!);
    expect(server.status).toBe('ACTIVE');
    const imageId = (server.image as { id: string }).id;
    expect(imageId).not.toBe(t.seed.imageId);
    const image = await admin().glance.getImage(imageId);
    const glance = (full.metadata as { glanceImage: BackedUpImage }).glanceImage;
    expect(image).toMatchObject({
      status: 'active', name: 'sim-tiny-raw', disk_format: 'raw', container_format: 'bare', min_disk: 0, min_ram: 0,
      checksum: glance.checksum, os_hash_algo: 'sha512', os_hash_value: glance.osHashValue,
      'owner_specified.openstack.object': 'images/sim-tiny-raw', 'strongbox-restored-from': t.seed.imageId,
    });
    expect(sha(readFileSync(t.sim.files.imagePath(imageId)))).toBe(original.sha);
    // The data volume came back too, attached next to the image root disk.
    const vols = server['os-extended-volumes:volumes_attached'];
    expect(vols).toHaveLength(1);
    expect(t.sim.counts()).toMatchObject({ images: before.images + 1, servers: before.servers + 1, volumes: before.volumes + 1 });
  });

  it('without a copy in the backup nor a mapping, the restore fails clearly and leaves nothing', async () => {
    // A backup taken with the setting off holds no image.
    await systemFork(orm).nativeUpdate(Cloud, { id: cloudId }, { downloadImage: false });
    const em = systemFork(orm);
    const b = em.create(Backup, {
      cloud: cloudId, project: db1.project, instance: db1, destination: destinationId, state: 'AVAILABLE', type: 'FULL',
      repositoryBackupId: full.repositoryBackupId, metadata: { ...(full.metadata as object), glanceImage: undefined },
    });
    em.create(BackupDisk, { backup: b, project: db1.project, position: 0, name: 'db-1-data', kind: 'CINDER', volumeExternalId: t.seed.volumes['db-1-data'], sizeBytes: BigInt(t.sim.gibBytes) });
    await em.flush();
    await systemFork(orm).nativeUpdate(Cloud, { id: cloudId }, { downloadImage: true });
    const before = t.sim.counts();
    const task = await finished(await queueRestore(b.id, 'db-1-no-image'));
    expect(task.state).toBe('FAILED');
    expect(task.error).toMatch(/exists neither in the target cloud nor in the image mappings/);
    expect(t.sim.counts()).toEqual(before);
  });
});

describe('an image Glance no longer has', () => {
  it('a FULL backup still stores the volumes and notes the image as not downloaded', async () => {
    expect(t.sim.state.images.has(t.seed.imageId)).toBe(false); // deleted by an earlier test
    const task = await finished(await queueBackup('FULL'));
    expect(task.error ?? null).toBeNull();
    const b = await systemFork(orm).findOneOrFail(Backup, { task: task.id }, { populate: ['disks'], filters: false });
    expect(b).toMatchObject({ state: 'AVAILABLE', type: 'FULL' });
    expect(b.disks.getItems().map((d) => d.kind)).toEqual(['CINDER']);
    expect((b.metadata as { glanceImage?: unknown }).glanceImage).toBeUndefined();
    expect(b.note).toContain(`image ${t.seed.imageId}: not in Glance any more, not downloaded`);
  });
});

describe('Nova (non-Cinder) disks', () => {
  it('restores a NOVA_ROOT disk as a new image the server boots from, and a NOVA_EPHEMERAL disk as a volume', async () => {
    // A backup as the SSH strategy records it, built through the repository directly.
    const root = Buffer.concat([randomBytes(300 << 10), Buffer.alloc(256 << 10), randomBytes(100 << 10)]);
    const ephemeral = Buffer.concat([Buffer.from('ephemeral disk data'), randomBytes(200 << 10)]);
    const rootFile = path.join(repoDir, 'nova-root.raw');
    const ephFile = path.join(repoDir, 'nova-eph.raw');
    writeFileSync(rootFile, root);
    writeFileSync(ephFile, ephemeral);
    const em = systemFork(orm);
    const repo = await openDestinationRepository(await em.findOneOrFail(BackupDestination, destinationId), secrets, { workers: 1 });
    const sources = [await FileDiskSource.open(rootFile), await FileDiskSource.open(ephFile)];
    let result;
    try {
      result = await repo.backup([{ name: 'disk', source: sources[0]! }, { name: 'disk.eph0', source: sources[1]! }], { tag: `instance:${db1.id}` });
    } finally {
      for (const s of sources) await s.close();
      await repo.close();
    }
    const metadata = { ...(await captureInstance(admin(), db1.externalId)), disks: [], notCovered: [] };
    const b = em.create(Backup, {
      cloud: cloudId, project: db1.project, instance: db1, destination: destinationId, state: 'AVAILABLE', type: 'FULL',
      repositoryBackupId: result.id, metadata: metadata as unknown as Record<string, unknown>,
    });
    em.create(BackupDisk, { backup: b, project: db1.project, position: 0, name: 'disk', kind: 'NOVA_ROOT', bootIndex: 0, sizeBytes: BigInt(root.length) });
    em.create(BackupDisk, { backup: b, project: db1.project, position: 1, name: 'disk.eph0', kind: 'NOVA_EPHEMERAL', sizeBytes: BigInt(ephemeral.length) });
    await em.flush();

    const before = t.sim.counts();
    const taskId = await queueRestore(b.id, 'db-1-from-nova-disks');
    const task = await finished(taskId);
    expect(task.error ?? null).toBeNull();
    const restore = await systemFork(orm).findOneOrFail(Restore, { task: taskId }, { filters: false });
    const server = await admin().nova.getServer(restore.resultExternalId!);
    expect(server.status).toBe('ACTIVE');
    const imageId = (server.image as { id: string }).id;
    const image = await admin().glance.getImage(imageId);
    expect(image).toMatchObject({ status: 'active', name: 'db-1-from-nova-disks-root', disk_format: 'raw', size: root.length });
    // Only SSH transfer writes a root disk onto an existing image; the note says why not here.
    expect(restore.note).toMatch(/^root disk: uploaded as a new image \(cloud \S+ does not use SSH transfer\)$/);
    expect(readFileSync(t.sim.files.imagePath(imageId)).equals(root)).toBe(true);
    const [vol] = server['os-extended-volumes:volumes_attached'];
    const volBytes = readFileSync(t.sim.files.volumePath(vol!.id));
    expect(volBytes.subarray(0, ephemeral.length).equals(ephemeral)).toBe(true);
    expect(volBytes.subarray(ephemeral.length).every((x) => x === 0)).toBe(true);
    expect(t.sim.counts()).toMatchObject({ images: before.images + 1, servers: before.servers + 1, volumes: before.volumes + 1 });
  });
});
