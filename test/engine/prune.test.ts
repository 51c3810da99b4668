// PRUNE and VERIFY tasks end to end: real PostgreSQL, a real data mover, real repositories in
// temporary folders, the real usage ledger. Backups are written with the repository API (the
// BACKUP executor's own tests cover OpenStack); their rows look as the BACKUP executor leaves them.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { usageLedger } from '../../billing/ledger.ts';
import { Backup, BackupDestination, Policy, Task, type Instance, type Project } from '../../src/db/entities/index.ts';
import { openOrm, systemFork, type Orm } from '../../src/db/orm.ts';
import { SecretBox } from '../../src/db/secrets.ts';
import { openDestinationRepository } from '../../src/engine/backup/destination-repository.ts';
import { startDataMover, type RunningDataMover } from '../../src/engine/data-mover.ts';
import { pruneExecutor } from '../../src/engine/maintenance/prune-executor.ts';
import { verifyExecutor } from '../../src/engine/maintenance/verify-executor.ts';
import type { DiskSource } from '../../src/engine/repository/index.ts';
import { startScheduler } from '../../src/engine/scheduler/scheduler.ts';
import { createTask } from '../../src/engine/tasks/tasks.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { seeder } from '../helpers/seed.ts';
import { waitFor } from '../helpers/wait-for.ts';

const publisher = { publish: async () => {} };
const secrets = new SecretBox(randomBytes(32));
const DISK = 1 << 20; // 16 chunks of 64 KiB
const DAY = 86_400_000;
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** A disk in memory; `gate` holds every read after the first until it resolves. */
class MemoryDisk implements DiskSource {
  constructor(readonly bytes: Buffer, private gate?: Promise<void>) {}
  get size() {
    return this.bytes.length;
  }
  async read(offset: number, length: number) {
    // Gated from the first read: the backup reads consecutive chunks in one call (1 MiB batches),
    // and holds its lock (taken before its index was read) while it waits.
    if (this.gate) await this.gate;
    const out = Buffer.allocUnsafeSlow(Math.min(length, this.bytes.length - offset));
    this.bytes.copy(out, 0, offset, offset + out.length);
    return out;
  }
}

describe('PRUNE and VERIFY tasks', () => {
  let orm: Orm;
  let url: string;
  let drop: () => Promise<void>;
  let dir: string;
  let mover: RunningDataMover;
  const moreMovers: RunningDataMover[] = [];

  beforeAll(async () => {
    const db = await createTestDatabase();
    url = db.url;
    drop = db.drop;
    orm = await openOrm(url);
    dir = mkdtempSync(path.join(os.tmpdir(), 'sb-prune-'));
    const deps = { secrets, usage: usageLedger, workers: 1 };
    mover = await startDataMover({ orm, databaseUrl: url, publisher, name: 'maintenance', executors: { PRUNE: pruneExecutor(deps), VERIFY: verifyExecutor(deps) } });
  });
  afterEach(async () => {
    for (const m of moreMovers.splice(0)) await m.stop();
  });
  afterAll(async () => {
    await mover?.stop();
    await orm?.close();
    await drop?.();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  let n = 0;
  async function destination(): Promise<BackupDestination> {
    const em = systemFork(orm);
    const d = em.create(BackupDestination, { name: `dest-${++n}`, kind: 'FILE_SYSTEM', url: `file://${dir}/repo-${n}`, chunkSizeBytes: 64 << 10 });
    await em.flush();
    return d;
  }

  /** A completed backup of `instance`: data in the repository, an AVAILABLE row, an open ledger interval. */
  async function backup(instance: Instance, dest: BackupDestination, opts: { type: 'FULL' | 'INCREMENTAL'; daysAgo: number; policy?: Policy; bytes?: Buffer }) {
    const bytes = opts.bytes ?? randomBytes(DISK);
    const repo = await openDestinationRepository(dest, secrets, { createIfMissing: true, workers: 1 });
    try {
      const r = await repo.backup([{ name: 'vda', source: new MemoryDisk(bytes) }], { tag: `instance:${instance.id}` });
      return await systemFork(orm).transactional(async (em) => {
        const b = em.create(Backup, {
          cloud: instance.cloud.id, project: instance.project.id, instance: instance.id, destination: dest.id, policy: opts.policy?.id, type: opts.type, state: 'AVAILABLE',
          repositoryBackupId: r.id, completedAt: new Date(Date.now() - opts.daysAgo * DAY), durationSeconds: 1, frontEndBytes: BigInt(DISK), storedBytes: BigInt(r.storedBytes),
        });
        await em.flush();
        await usageLedger.backupCompleted(em as never, b);
        return { row: b, sha: sha(bytes) };
      });
    } finally {
      await repo.close();
    }
  }

  async function runTask(input: Parameters<typeof createTask>[1]): Promise<Task> {
    const id = await systemFork(orm).transactional(async (em) => (await createTask(em as never, input, null)).id);
    return waitFor(`task ${id} to finish`, async () => {
      const t = await systemFork(orm).findOneOrFail(Task, id);
      return ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(t.state) ? t : null;
    });
  }

  async function restoredSha(dest: BackupDestination, repositoryBackupId: string): Promise<string> {
    const repo = await openDestinationRepository(dest, secrets, { workers: 1 });
    const file = path.join(dir, `restore-${randomBytes(4).toString('hex')}.raw`);
    try {
      await repo.restore(repositoryBackupId, 0, { kind: 'file', path: file });
      return sha(await readFile(file));
    } finally {
      await repo.close();
      rmSync(file, { force: true });
    }
  }

  const dirOf = (dest: BackupDestination) => new URL(dest.url).pathname;
  /** When the usage ledger's interval of the backup ends (null: still open). */
  const ledgerEnd = async (backupId: string): Promise<number | null> => {
    const [row] = await orm.em.getConnection().execute(`select deleted_at from usage_interval where backup_id = ?`, [backupId]);
    expect(row, `ledger interval of ${backupId}`).toBeDefined();
    return row.deleted_at === null ? null : new Date(row.deleted_at).getTime();
  };

  async function world() {
    const s = seeder(orm);
    const project: Project = await s.project(await s.cloud());
    const [vm] = await s.instances(project, 1);
    const [gone] = await s.instances(project, 1, { present: false }); // deleted in the cloud
    return { s, project, vm: vm!, gone: gone! };
  }

  it("applies a policy's retention: the deleted backups leave the repository and the ledger, the kept ones still restore byte for byte", async () => {
    const { vm, gone } = await world();
    const dest = await destination();
    const em = systemFork(orm);
    const policy = em.create(Policy, { name: `keep-${++n}`, destination: dest.id, retention: { keepLastFull: 1, keepLastIncremental: 2, keepDays: 3, keepLastWhileInstanceExists: true } });
    await em.flush();

    // Per instance: vm f10 i9 i8 f7 i6 i5 (days ago) → keeps f7 (last full), i6 i5 (last
    // incrementals, i5 also the newest); gone f25 f20 → keeps f20 (last full; the instance's
    // absence only lifts the keepLastWhileInstanceExists rule).
    const vmBackups = [];
    for (const [type, daysAgo] of [['FULL', 10], ['INCREMENTAL', 9], ['INCREMENTAL', 8], ['FULL', 7], ['INCREMENTAL', 6], ['INCREMENTAL', 5]] as const) {
      vmBackups.push(await backup(vm, dest, { type, daysAgo, policy }));
    }
    const goneOld = await backup(gone, dest, { type: 'FULL', daysAgo: 25, policy });
    const goneLast = await backup(gone, dest, { type: 'FULL', daysAgo: 20, policy });
    // Another policy's backup in the same repository is not this prune's business.
    const other = await backup(vm, dest, { type: 'FULL', daysAgo: 30 });
    const before = readdirSync(path.join(dirOf(dest), 'data'), { recursive: true }).length;

    const task = await runTask({ type: 'PRUNE', policy, params: {} });
    expect(task.state, task.error).toBe('SUCCEEDED');
    expect(Object.keys(task.phaseSeconds)).toEqual(expect.arrayContaining(['plan', 'forget', 'collect']));

    const deleted = [vmBackups[0]!, vmBackups[1]!, vmBackups[2]!, goneOld];
    const kept = [vmBackups[3]!, vmBackups[4]!, vmBackups[5]!, goneLast, other];
    const rows = await systemFork(orm).find(Backup, { id: { $in: [...deleted, ...kept].map((b) => b.row.id) } });
    const stateOf = (b: { row: Backup }) => rows.find((r) => r.id === b.row.id)!;
    for (const b of deleted) {
      expect(stateOf(b).state).toBe('DELETED');
      expect(stateOf(b).deletedAt).toBeInstanceOf(Date);
      expect(await ledgerEnd(b.row.id)).toBe(stateOf(b).deletedAt!.getTime());
    }
    for (const b of kept) {
      expect(stateOf(b).state).toBe('AVAILABLE');
      expect(await ledgerEnd(b.row.id)).toBeNull();
    }

    const repo = await openDestinationRepository(dest, secrets, { workers: 1 });
    try {
      expect((await repo.list()).map((r) => r.id).sort()).toEqual(kept.map((b) => b.row.repositoryBackupId).sort());
      const report = await repo.verify({ readData: true });
      expect(report.errors).toEqual([]);
    } finally {
      await repo.close();
    }
    // Their data is gone too (every backup had its own random bytes), not just the records.
    expect(readdirSync(path.join(dirOf(dest), 'data'), { recursive: true }).length).toBeLessThan(before);
    expect(task.result).toMatchObject({ deleted: 4, kept: 4, destinations: [{ destinationId: dest.id, forgotten: 4, deletedPacks: 4 }] });
    for (const b of kept) expect(await restoredSha(dest, b.row.repositoryBackupId!)).toBe(b.sha);

    // Again: nothing more to delete, nothing changes.
    const again = await runTask({ type: 'PRUNE', policy, params: {} });
    expect(again.result).toMatchObject({ deleted: 0, kept: 4, destinations: [] });
  });

  it('deletes exactly the backups it is given (backupDelete), and finishes the repository side of an earlier interrupted prune', async () => {
    const { vm } = await world();
    const dest = await destination();
    const a = await backup(vm, dest, { type: 'FULL', daysAgo: 2 });
    const b = await backup(vm, dest, { type: 'INCREMENTAL', daysAgo: 1 });
    const c = await backup(vm, dest, { type: 'INCREMENTAL', daysAgo: 0 });
    // A prune that died after its `forget` transaction: the row is DELETED, the record still stored.
    await systemFork(orm).nativeUpdate(Backup, { id: a.row.id }, { state: 'DELETED', deletedAt: new Date() });

    const task = await runTask({ type: 'PRUNE', cloud: vm.cloud, project: vm.project, destination: dest, backup: b.row, params: { backupIds: [b.row.id] } });
    expect(task.state, task.error).toBe('SUCCEEDED');
    const row = await systemFork(orm).findOneOrFail(Backup, b.row.id);
    expect(row.state).toBe('DELETED');
    expect(await ledgerEnd(b.row.id)).toBe(row.deletedAt!.getTime());
    expect(await ledgerEnd(c.row.id)).toBeNull();
    const repo = await openDestinationRepository(dest, secrets, { workers: 1 });
    try {
      expect((await repo.list()).map((r) => r.id)).toEqual([c.row.repositoryBackupId]);
    } finally {
      await repo.close();
    }
    expect(await restoredSha(dest, c.row.repositoryBackupId!)).toBe(c.sha);
  });

  it('collects the record of a run whose row FAILED after its data was stored; keeps records of running rows and records no row names', async () => {
    const { vm } = await world();
    const dest = await destination();
    const doomed = await backup(vm, dest, { type: 'FULL', daysAgo: 2 });
    const kept = await backup(vm, dest, { type: 'FULL', daysAgo: 1 });
    // Records as the BACKUP executor writes them (they carry their row's ID), for rows that never became AVAILABLE.
    const row = async (state: 'FAILED' | 'RUNNING') => {
      const em = systemFork(orm);
      const b = em.create(Backup, { cloud: vm.cloud.id, project: vm.project.id, instance: vm.id, destination: dest.id, type: 'FULL', state });
      await em.flush();
      return b.id;
    };
    const failedRow = await row('FAILED');
    const runningRow = await row('RUNNING');
    const repo = await openDestinationRepository(dest, secrets, { workers: 1 });
    try {
      const store = (metadata: unknown) => repo.backup([{ name: 'vda', source: new MemoryDisk(randomBytes(DISK)) }], { tag: `instance:${vm.id}`, metadata });
      const orphan = await store({ strongboxBackupId: failedRow });
      const running = await store({ strongboxBackupId: runningRow });
      const foreign = await store({ strongboxBackupId: '00000000-0000-4000-8000-000000000000' });
      const cli = await store(null);

      const task = await runTask({ type: 'PRUNE', cloud: vm.cloud, project: vm.project, destination: dest, backup: doomed.row, params: { backupIds: [doomed.row.id] } });
      expect(task.state, task.error).toBe('SUCCEEDED');
      expect(task.result).toMatchObject({ deleted: 1, destinations: [{ destinationId: dest.id, forgotten: 2 }] });
      expect((await repo.list()).map((r) => r.id).sort()).toEqual([kept.row.repositoryBackupId, running.id, foreign.id, cli.id].sort());
      expect((await repo.list()).map((r) => r.id)).not.toContain(orphan.id);
      expect((await repo.verify({ readData: true })).errors).toEqual([]);
    } finally {
      await repo.close();
    }
    expect(await restoredSha(dest, kept.row.repositoryBackupId!)).toBe(kept.sha);
  });

  it("never collects a running backup's data: the prune waits for the backup's lock, then keeps what it wrote", async () => {
    const { vm } = await world();
    const dest = await destination();
    const em = systemFork(orm);
    const policy = em.create(Policy, { name: `keep-${++n}`, destination: dest.id, retention: { keepLastFull: 1 } });
    await em.flush();
    // The running backup shares most chunks with an old backup that the prune deletes.
    const shared = randomBytes(DISK);
    await backup(vm, dest, { type: 'FULL', daysAgo: 5, policy, bytes: shared });
    const newest = await backup(vm, dest, { type: 'FULL', daysAgo: 1, policy });
    const running = Buffer.from(shared);
    randomBytes(64 << 10).copy(running, 0); // first chunk new, the other 15 only the doomed backup has

    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const repo = await openDestinationRepository(dest, secrets, { workers: 1 });
    try {
      const inFlight = repo.backup([{ name: 'vda', source: new MemoryDisk(running, gate) }], { tag: `instance:${vm.id}` });
      await waitFor('the running backup to hold its lock', async () => readdirSync(path.join(dirOf(dest), 'locks')).length > 0);
      const pruning = runTask({ type: 'PRUNE', policy, params: {} });
      // The prune has deleted the row (phase forget) and now waits for the repository lock.
      await waitFor('the prune to wait for the lock', async () => (await systemFork(orm).findOne(Task, { type: 'PRUNE', policy: policy.id }))?.phase === 'collect');
      await new Promise((r) => setTimeout(r, 500));
      expect((await systemFork(orm).findOneOrFail(Task, { type: 'PRUNE', policy: policy.id })).state).toBe('RUNNING'); // still waiting
      open();
      const result = await inFlight;
      const task = await pruning;
      expect(task.state, task.error).toBe('SUCCEEDED');
      expect(task.result).toMatchObject({ deleted: 1, destinations: [{ forgotten: 1 }] });
      expect((await repo.list()).map((r) => r.id).sort()).toEqual([newest.row.repositoryBackupId, result.id].sort());
      expect((await repo.verify({ readData: true })).errors).toEqual([]);
      const file = path.join(dir, 'running.raw');
      await repo.restore(result.id, 0, { kind: 'file', path: file });
      expect(sha(await readFile(file))).toBe(sha(running));
    } finally {
      open();
      await repo.close();
    }
  });

  it('the scheduler queues one PRUNE per policy with a retention rule per day, with two schedulers', async () => {
    const em = systemFork(orm);
    const withRule = em.create(Policy, { name: `daily-${++n}`, retention: { keepDays: 30 } });
    const without = em.create(Policy, { name: `forever-${++n}` });
    const disabled = em.create(Policy, { name: `off-${++n}`, enabled: false, retention: { keepDays: 1 } });
    await em.flush();
    let now = new Date(Date.UTC(2031, 0, 5, 13));
    const options = { orm, databaseUrl: url, publisher, tickMs: 3_600_000, lookaheadMs: 0, now: () => now };
    const a = await startScheduler(options);
    const b = await startScheduler(options);
    try {
      await Promise.all([a.tick(), b.tick(), a.tick(), b.tick()]);
      const prunes = () => systemFork(orm).find(Task, { type: 'PRUNE', policy: { $in: [withRule.id, without.id, disabled.id] } }, { orderBy: { createdAt: 'asc' } });
      expect((await prunes()).map((t) => [t.policy!.id, t.scheduleKey])).toEqual([[withRule.id, `prune:${withRule.id}:2031-01-05`]]);
      // The leader stops: the other one takes over and does not queue the day's prune again.
      await (a.isLeader() ? a : b).stop();
      const survivor = a.isLeader() ? b : a;
      await survivor.tick();
      expect(await prunes()).toHaveLength(1);
      // Before noon of the next day: nothing; after: the next day's prune.
      now = new Date(Date.UTC(2031, 0, 6, 11));
      expect((await survivor.tick()).prunes).toBe(0);
      now = new Date(Date.UTC(2031, 0, 6, 12, 1));
      await Promise.all([survivor.tick(), survivor.tick()]);
      expect((await prunes()).map((t) => t.scheduleKey)).toEqual([`prune:${withRule.id}:2031-01-05`, `prune:${withRule.id}:2031-01-06`]);
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  it('VERIFY keeps its summary on the task, and fails with the damage named when a pack is damaged', async () => {
    const { vm } = await world();
    const dest = await destination();
    await backup(vm, dest, { type: 'FULL', daysAgo: 0 });
    const ok = await runTask({ type: 'VERIFY', destination: dest, maxAttempts: 1, params: { readData: true } });
    expect(ok.state, ok.error).toBe('SUCCEEDED');
    expect(ok.result).toMatchObject({ ok: true, readData: true, backups: 1, errorCount: 0 });
    expect((ok.result as { checkedBytes: number }).checkedBytes).toBeGreaterThan(0);
    expect(ok.bytesDone).toBe(ok.bytesTotal);

    const data = path.join(dirOf(dest), 'data');
    const pack = readdirSync(data, { recursive: true, withFileTypes: true }).find((e) => e.isFile())!;
    const file = path.join(pack.parentPath, pack.name);
    const bytes = await readFile(file);
    bytes[100] = bytes[100]! ^ 0xff;
    writeFileSync(file, bytes);
    const bad = await runTask({ type: 'VERIFY', destination: dest, maxAttempts: 1, params: { readData: true } });
    expect(bad.state).toBe('FAILED');
    expect(bad.error).toMatch(/1 problem\(s\)/);
    expect(bad.result).toMatchObject({ ok: false, errorCount: 1 });
    expect(JSON.stringify(bad.result)).toContain(pack.name);
  });

  it('spares a backup that holds the Glance image of a backup that stays, and deletes it with the last one naming it', async () => {
    const { vm } = await world();
    const dest = await destination();
    const full = await backup(vm, dest, { type: 'FULL', daysAgo: 2 });
    const incr = await backup(vm, dest, { type: 'INCREMENTAL', daysAgo: 1 });
    const em = systemFork(orm);
    await em.nativeUpdate(Backup, { id: full.row.id }, { metadata: { glanceImage: { imageId: 'img-1', position: 1 } } });
    await em.nativeUpdate(Backup, { id: incr.row.id }, { metadata: { glanceImage: { imageId: 'img-1', heldBy: full.row.id } } });

    const spared = await runTask({ type: 'PRUNE', params: { backupIds: [full.row.id] } });
    expect(spared.state, spared.error).toBe('SUCCEEDED');
    expect(spared.result).toMatchObject({ deleted: 0, sparedImageHolders: [full.row.id] });
    expect((await systemFork(orm).findOneOrFail(Backup, full.row.id)).state).toBe('AVAILABLE');
    expect(await restoredSha(dest, full.row.repositoryBackupId!)).toBe(full.sha);

    const both = await runTask({ type: 'PRUNE', params: { backupIds: [full.row.id, incr.row.id] } });
    expect(both.result).toMatchObject({ deleted: 2 });
    expect((await systemFork(orm).find(Backup, { id: { $in: [full.row.id, incr.row.id] } })).map((b) => b.state)).toEqual(['DELETED', 'DELETED']);
  });
});
