// BACKUP tasks end to end, strategy "disk attachment to a proxy VM": a task queued in PostgreSQL,
// run by a real data mover, against the OpenStack simulator (snapshots, temporary volumes,
// attachments to the proxy server, nfs files), into a real repository in a temporary folder.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Backup, BackupDestination, Cloud, Restore, Instance, Task, Policy,
} from '../../src/db/entities/index.ts';
import { systemFork, type Orm } from '../../src/db/orm.ts';
import { SecretBox } from '../../src/db/secrets.ts';
import { backupExecutor } from '../../src/engine/backup/backup-executor.ts';
import { openDestinationRepository } from '../../src/engine/backup/destination-repository.ts';
import { layout } from '../../src/engine/repository/format.ts';
import { open, seal } from '../../src/engine/repository/keys.ts';
import { restoreExecutor } from '../../src/engine/backup/restore-executor.ts';
import { cleanOrphans } from '../../src/engine/strategies/disk-attachment/janitor.ts';
import { TASK_TAG } from '../../src/engine/strategies/disk-attachment/proxy-disks.ts';
import { createTask } from '../../src/engine/tasks/tasks.ts';
import { usageLedger } from '../../billing/ledger.ts';
import { startSimBackupWorld, type SimBackupWorld } from '../helpers/sim-backup-world.ts';
import { connect, type TestSim } from '../helpers/simulator.ts';

let w: SimBackupWorld;
let t: TestSim;
let orm: Orm;
let repoDir: string;
let cloudId: string;
let destinationId: string;
let web1: Instance;
const secrets = new SecretBox(randomBytes(32));
const wait = { intervalMs: 20, timeoutMs: 1500 };
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

beforeAll(async () => {
  const deps = { secrets, wait, workers: 1, http: { timeoutMs: 5000, retries: 0 }, usage: usageLedger };
  w = await startSimBackupWorld({ name: 'backup', secrets, executors: { BACKUP: backupExecutor(deps), RESTORE: restoreExecutor(deps) } });
  ({ t, orm, repoDir, cloudId, destinationId } = w);
  web1 = await w.instance('web-1');
});
afterAll(() => w?.close());

// Tasks are created as the API's startBackup/startRestore create them: createTask (quota
// admission, audit, Restore row, queue job in the same transaction).
async function queueBackup(maxAttempts = 1, instance = web1, policy?: Policy): Promise<string> {
  return systemFork(orm).transactional(async (tx) => {
    const task = await createTask(tx as never, {
      type: 'BACKUP', cloud: tx.getReference(Cloud, cloudId), project: instance.project, instance, destination: tx.getReference(BackupDestination, destinationId),
      maxAttempts, priority: 60, params: { type: 'AUTO' }, policy: policy ? tx.getReference(Policy, policy.id) : undefined,
    }, null);
    return task.id;
  });
}

async function queueRestore(backup: Backup, name: string, mappings: Restore['mappings'] = {}, verify = false): Promise<string> {
  return systemFork(orm).transactional(async (tx) => {
    const b = await tx.findOneOrFail(Backup, backup.id, { filters: false });
    const task = await createTask(tx as never, {
      type: 'RESTORE', cloud: tx.getReference(Cloud, cloudId), project: web1.project, instance: web1, backup: b, destination: b.destination,
      maxAttempts: 1, params: { name, mappings, verify },
    }, null, { backup: b, project: web1.project, name, mappings, verify });
    return task.id;
  });
}

const finished = (taskId: string, ms?: number) => w.finished(taskId, ms);

const volumeSha = (name: string) => sha(readFileSync(t.sim.files.volumePath(t.seed.volumes[name]!)));

describe('BACKUP task (disk attachment, simulator)', () => {
  let first: Backup;
  const atBackup: Record<string, string> = {};

  it('backs up every Cinder volume of the instance and leaves nothing behind in the cloud', async () => {
    const before = t.sim.counts();
    for (const v of ['web-1-root', 'web-1-data']) atBackup[v] = volumeSha(v);
    const task = await finished(await queueBackup());
    expect(task.error ?? null).toBeNull();
    expect(task.state).toBe('SUCCEEDED');
    expect(Object.keys(task.phaseSeconds)).toEqual(expect.arrayContaining(['metadata', 'snapshot', 'attach', 'store', 'cleanup']));
    expect(t.sim.counts()).toEqual(before);

    const em = systemFork(orm);
    first = await em.findOneOrFail(Backup, { task: task.id }, { populate: ['disks'], filters: false });
    expect(task.backup?.id).toBe(first.id);
    expect(first).toMatchObject({ state: 'AVAILABLE', type: 'FULL' });
    // The usage ledger billing reads has the backup, with its figures, from its completion.
    const [usage] = await em.execute(`select stored_bytes::text, front_end_bytes::text, completed_at, deleted_at from usage_interval where backup_id = ?`, [first.id]);
    expect(usage).toMatchObject({ stored_bytes: String(first.storedBytes), front_end_bytes: String(first.frontEndBytes), deleted_at: null });
    expect(first.completedAt).toBeInstanceOf(Date);
    expect(first.durationSeconds).toBeGreaterThan(0);
    expect(first.frontEndBytes).toBe(2n * BigInt(t.sim.gibBytes)); // two 1 "GiB" volumes (4 MiB here)
    expect(first.readBytes).toBeGreaterThan(0n);
    expect(first.readBytes).toBeLessThan(first.frontEndBytes); // holes are not read
    expect(first.storedBytes).toBeGreaterThan(0n);
    expect(first.disks.getItems().map((d) => [d.position, d.volumeExternalId, d.bootIndex ?? null])).toEqual([
      [0, t.seed.volumes['web-1-root'], 0],
      [1, t.seed.volumes['web-1-data'], null],
    ]);
    const meta = first.metadata as { server: { name: string }; disks: unknown[]; ports: unknown[]; flavor: { original_name: string } };
    expect(meta.server.name).toBe('web-1');
    expect(meta.disks).toHaveLength(2);
    expect(meta.ports).toHaveLength(1);
    expect(meta.flavor.original_name).toBe('m1.tiny');

    // The repository holds it, and its disks are the volumes as they were at backup time.
    const dest = await em.findOneOrFail(BackupDestination, destinationId);
    const repo = await openDestinationRepository(dest, secrets, { workers: 1 });
    try {
      expect((await repo.list()).map((r) => r.id)).toEqual([first.repositoryBackupId]);
      for (const [i, name] of ['web-1-root', 'web-1-data'].entries()) {
        const out = path.join(repoDir, `restored-${i}.raw`);
        await repo.restore(first.repositoryBackupId!, i, { kind: 'file', path: out });
        expect(sha(readFileSync(out)), name).toBe(atBackup[name]);
      }
    } finally {
      await repo.close();
    }
  });

  it('a second backup is incremental on the first and stores far fewer bytes', async () => {
    await t.sim.files.writeAt(t.sim.files.volumePath(t.seed.volumes['web-1-data']!), 1 << 20, Buffer.from('a small change after the first backup'));
    const task = await finished(await queueBackup());
    expect(task.error ?? null).toBeNull();
    expect(task.state).toBe('SUCCEEDED');
    const second = await systemFork(orm).findOneOrFail(Backup, { task: task.id }, { filters: false });
    expect(second).toMatchObject({ state: 'AVAILABLE', type: 'INCREMENTAL' });
    expect(second.parent?.id).toBe(first.id);
    expect(second.frontEndBytes).toBe(first.frontEndBytes);
    // One 64 KiB chunk changed, plus manifests and the record.
    expect(second.storedBytes * 10n).toBeLessThan(first.storedBytes);
  });

  it("takes a full backup once the policy's fullEvery incrementals followed the last full one", async () => {
    const em = systemFork(orm);
    const policy = em.create(Policy, { name: 'full-after-one', fullEvery: 1 });
    await em.flush();
    const task = await finished(await queueBackup(1, web1, policy));
    expect(task.state).toBe('SUCCEEDED');
    const third = await systemFork(orm).findOneOrFail(Backup, { task: task.id }, { filters: false });
    expect(third).toMatchObject({ state: 'AVAILABLE', type: 'FULL', parent: null });
    const next = await systemFork(orm).findOneOrFail(Backup, { task: (await finished(await queueBackup(1, web1, policy))).id }, { filters: false });
    expect(next).toMatchObject({ type: 'INCREMENTAL' });
    expect(next.parent?.id).toBe(third.id);
  });

  it('restores the first backup as a new server whose volumes hold the bytes of backup time', async () => {
    const before = t.sim.counts();
    const taskId = await queueRestore(first, 'web-1-restored');
    const task = await finished(taskId);
    expect(task.error ?? null).toBeNull();
    expect(task.state).toBe('SUCCEEDED');
    expect(Object.keys(task.phaseSeconds)).toEqual(expect.arrayContaining(['volumes', 'attach', 'restore', 'detach', 'server']));
    const restore = await systemFork(orm).findOneOrFail(Restore, { task: taskId }, { filters: false });
    expect(restore.state).toBe('SUCCEEDED');
    const osc = connect(t).clients(connect(t).defaultSession());
    const server = await osc.nova.getServer(restore.resultExternalId!);
    expect(server).toMatchObject({ name: 'web-1-restored', status: 'ACTIVE', tenant_id: t.seed.projects.demo, image: '' });
    expect(server.flavor.original_name).toBe('m1.tiny');
    const vols = await Promise.all(server['os-extended-volumes:volumes_attached'].map((v) => osc.cinder.getVolume(v.id)));
    const byName = Object.fromEntries(vols.map((v) => [v.name, sha(readFileSync(t.sim.files.volumePath(v.id)))]));
    expect(byName).toEqual({ 'web-1-restored-root': atBackup['web-1-root'], 'web-1-restored-disk1': atBackup['web-1-data'] });
    expect(vols.find((v) => v.name === 'web-1-restored-root')?.bootable).toBe('true');
    expect((await osc.neutron.listPorts({ deviceId: server.id })).length).toBe(1);
    expect(t.sim.counts()).toMatchObject({ ...before, servers: before.servers + 1, volumes: before.volumes + 2, attachments: before.attachments + 2, ports: before.ports + 1 });
    expect(await osc.nova.listVolumeAttachments(t.seed.proxyServerId)).toEqual([]);
  });

  it('restores one disk as a new volume', async () => {
    const before = t.sim.counts();
    const taskId = await queueRestore(first, 'web-1-data-copy', { diskPosition: 1 });
    const task = await finished(taskId);
    expect(task.error ?? null).toBeNull();
    const restore = await systemFork(orm).findOneOrFail(Restore, { task: taskId }, { filters: false });
    expect(restore.state).toBe('SUCCEEDED');
    expect(sha(readFileSync(t.sim.files.volumePath(restore.resultExternalId!)))).toBe(atBackup['web-1-data']);
    expect(t.sim.counts()).toEqual({ ...before, volumes: before.volumes + 1 });
  });

  it('a restore asked to verify recomputes every chunk id: a blob sealed under its id over other bytes fails it, leaving nothing', async () => {
    // One raw (random) chunk of the data disk, re-sealed under its own id over one flipped byte:
    // the AES-GCM seal still opens, only the recomputed id tells.
    const dest = await systemFork(orm).findOneOrFail(BackupDestination, destinationId);
    const repo = await openDestinationRepository(dest, secrets, { workers: 1 });
    let pack = '';
    let original = Buffer.alloc(0);
    let at = 0;
    try {
      const record = await repo.getBackup(first.repositoryBackupId!);
      const manifest = await repo.readManifest(record.disks[1]!.manifest);
      const id = [...Array(manifest.count).keys()].map((i) => manifest.id(i)).find((x) => x && repo.index.get(x)?.flags === 0)!;
      const loc = repo.index.get(id)!;
      pack = path.join(repoDir, 'repo', layout.pack(loc.pack));
      at = loc.offset;
      original = readFileSync(pack).subarray(at, at + loc.length);
      const plain = open(repo.keys.dataKey, original, id);
      plain[0] ^= 0xff;
      const fh = await fs.open(pack, 'r+');
      await fh.write(seal(repo.keys.dataKey, plain, id), 0, loc.length, at);
      await fh.close();
    } finally {
      await repo.close();
    }
    try {
      const before = t.sim.counts();
      const failed = await finished(await queueRestore(first, 'web-1-data-verified', { diskPosition: 1 }, true));
      expect(failed.state).toBe('FAILED');
      expect(failed.error).toContain('does not match its id');
      expect(t.sim.counts()).toEqual(before);
    } finally {
      const fh = await fs.open(pack, 'r+');
      await fh.write(original, 0, original.length, at);
      await fh.close();
    }
    const ok = await finished(await queueRestore(first, 'web-1-data-verified', { diskPosition: 1 }, true));
    expect(ok.error ?? null).toBeNull();
    const restore = await systemFork(orm).findOneOrFail(Restore, { task: ok.id }, { filters: false });
    expect(restore).toMatchObject({ state: 'SUCCEEDED', verify: true });
    expect(sha(readFileSync(t.sim.files.volumePath(restore.resultExternalId!)))).toBe(atBackup['web-1-data']);
  });

  it('a restore whose server create fails deletes the volumes it made', async () => {
    const before = t.sim.counts();
    t.sim.addFault({ method: 'POST', path: '/servers$', status: 500, times: 10 });
    try {
      const taskId = await queueRestore(first, 'web-1-doomed');
      const task = await finished(taskId);
      expect(task.state).toBe('FAILED');
      expect((await systemFork(orm).findOneOrFail(Restore, { task: taskId }, { filters: false })).state).toBe('FAILED');
    } finally {
      t.sim.faults.clear();
    }
    expect(t.sim.counts()).toEqual(before);
  });

  it('an image-booted instance: its Cinder volume is backed up, the Nova root disk is recorded as not covered', async () => {
    const db1 = await systemFork(orm).findOneOrFail(Instance, { externalId: t.seed.servers['db-1']! }, { filters: false });
    const task = await finished(await queueBackup(1, db1));
    expect(task.error ?? null).toBeNull();
    const b = await systemFork(orm).findOneOrFail(Backup, { task: task.id }, { populate: ['disks'], filters: false });
    expect(b.state).toBe('AVAILABLE');
    expect(b.disks.getItems().map((d) => d.volumeExternalId)).toEqual([t.seed.volumes['db-1-data']]);
    expect(b.note).toMatch(/not covered.*nova root disk/);
    expect((b.metadata as { notCovered: string[] }).notCovered).toHaveLength(1);
  });

  it('a snapshot refused with 5xx fails the task after its attempts, with one FAILED backup row and no leak', async () => {
    const before = t.sim.counts();
    t.sim.addFault({ method: 'POST', path: '/snapshots$', status: 503, times: 100 });
    try {
      const taskId = await queueBackup(2);
      const task = await finished(taskId, 40_000);
      expect(task.state).toBe('FAILED');
      expect(task.attempt).toBe(2);
      expect(task.error).toMatch(/503/);
      const rows = await systemFork(orm).find(Backup, { task: taskId }, { filters: false });
      expect(rows.map((r) => r.state)).toEqual(['FAILED']);
    } finally {
      t.sim.faults.clear();
    }
    expect(t.sim.counts()).toEqual(before);
  });

  it('an attach that never completes fails the task and cleans up its snapshots and volumes', async () => {
    const before = t.sim.counts();
    t.sim.faults.neverCompleteAttach = true;
    try {
      const task = await finished(await queueBackup());
      expect(task.state).toBe('FAILED');
      expect(task.error).toMatch(/timeout|timed out|attaching/i);
    } finally {
      t.sim.faults.clear();
    }
    expect(t.sim.counts()).toEqual(before);
    const proxyAttachments = await connect(t).clients(connect(t).defaultSession()).nova.listVolumeAttachments(t.seed.proxyServerId);
    expect(proxyAttachments).toEqual([]);
  });

  it('a task cancelled while it waits for an attach ends CANCELLED without leaks', async () => {
    const before = t.sim.counts();
    t.sim.faults.neverCompleteAttach = true;
    try {
      const taskId = await queueBackup();
      const end = Date.now() + 20_000;
      while ((await systemFork(orm).findOneOrFail(Task, taskId, { filters: false })).phase !== 'attach' && Date.now() < end) {
        await new Promise((r) => setTimeout(r, 50));
      }
      await systemFork(orm).nativeUpdate(Task, { id: taskId }, { cancelRequested: true });
      const task = await finished(taskId);
      expect(task.state).toBe('CANCELLED');
    } finally {
      t.sim.faults.clear();
    }
    expect(t.sim.counts()).toEqual(before);
  });
});

describe('janitor', () => {
  it('removes tagged leftovers of tasks that are not running, and keeps those of running tasks', async () => {
    const before = t.sim.counts();
    const osc = connect(t).clients(connect(t).defaultSession());
    const leftover = async (taskId: string, attach: boolean) => {
      const snap = await osc.cinder.createSnapshot({ volume_id: t.seed.volumes['db-1-data']!, force: true, metadata: { [TASK_TAG]: taskId } });
      await osc.cinder.waitForSnapshot(snap.id, wait);
      const vol = await osc.cinder.createVolume({ size: 1, snapshot_id: snap.id, metadata: { [TASK_TAG]: taskId } });
      await osc.cinder.waitForVolume(vol.id, ['available'], wait);
      if (attach) {
        await osc.nova.attachVolume(t.seed.proxyServerId, vol.id);
        await osc.cinder.waitForVolume(vol.id, ['in-use'], wait);
      }
      return { snap: snap.id, vol: vol.id };
    };
    const em = systemFork(orm);
    const running = em.create(Task, { type: 'BACKUP', state: 'RUNNING', cloud: cloudId });
    await em.flush();
    const dead = await leftover(randomUUID(), true);
    const live = await leftover(running.id, false);
    const result = await cleanOrphans(em, osc, { proxyServerId: t.seed.proxyServerId, olderThanMinutes: 0, now: new Date(Date.now() + 1000), wait });
    expect(result).toMatchObject({ volumes: 1, snapshots: 1, errors: [] });
    const ids = (await osc.cinder.listVolumes({ allTenants: true })).map((v) => v.id);
    expect(ids).not.toContain(dead.vol);
    expect(ids).toContain(live.vol);
    // The live task's resources are its own business; remove them here to end clean.
    await osc.cinder.deleteVolume(live.vol);
    await osc.cinder.waitForVolumeGone(live.vol, wait);
    await osc.cinder.deleteSnapshot(live.snap);
    await osc.cinder.waitForSnapshotGone(live.snap, wait);
    expect(t.sim.counts()).toEqual(before);
  });
});

