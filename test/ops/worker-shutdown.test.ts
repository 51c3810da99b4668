// SIGTERM to a `strongbox worker` in the middle of a real backup (OpenStack simulator with slow
// status changes, file-system repository): the worker hands the task back and exits cleanly,
// another worker process resumes it on the same attempt, and the result is one complete backup.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Backup, BackupDestination, Cloud, DataMover, Task } from '../../src/db/entities/index.ts';
import { systemFork } from '../../src/db/orm.ts';
import { SecretBox } from '../../src/db/secrets.ts';
import { openDestinationRepository } from '../../src/engine/backup/destination-repository.ts';
import { createTask } from '../../src/engine/tasks/tasks.ts';
import { HANDED_BACK_NOTE } from '../../src/engine/task-runner.ts';
import { startSimBackupWorld, type SimBackupWorld } from '../helpers/sim-backup-world.ts';
import { startStrongbox, type StrongboxProcess } from '../helpers/strongbox-process.ts';
import { waitFor } from '../helpers/wait-for.ts';

const masterKey = randomBytes(32);
const secrets = new SecretBox(masterKey);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
let w: SimBackupWorld;
const workers: StrongboxProcess[] = [];

beforeAll(async () => {
  // Status changes (snapshot, volume, attachment) take a second: a backup runs for several.
  w = await startSimBackupWorld({ name: 'shutdown', secrets, sim: { delayMs: 1000 } });
});
afterAll(async () => {
  for (const p of workers) if (p.child.exitCode === null) p.child.kill('SIGKILL');
  await w?.close();
});

function startWorker(name: string): StrongboxProcess {
  const p = startStrongbox(['worker', '--node-configuration', 'sim-proxy'], {
    DATABASE_URL: w.databaseUrl,
    STRONGBOX_MASTER_KEY: masterKey.toString('base64'),
    STRONGBOX_DATA_DIR: mkdtempSync(path.join(os.tmpdir(), `sb-worker-${name}-`)),
    // No waiting: the running task is handed back at once.
    STRONGBOX_SHUTDOWN_GRACE_SECONDS: '0',
  });
  workers.push(p);
  return p;
}

it('SIGTERM during a running backup: the worker exits 0, another worker resumes the task on the same attempt, one complete backup', async () => {
  const web1 = await w.instance('web-1');
  const atBackup = Object.fromEntries(['web-1-root', 'web-1-data'].map((v) => [v, sha(readFileSync(w.t.sim.files.volumePath(w.t.seed.volumes[v]!)))]));
  const a = startWorker('a');
  const moverA = (await a.waitForOutput(/data mover (\S+) running/))[1]!;
  // One attempt only: a hand-back that used it up would fail the task.
  const taskId = await systemFork(w.orm).transactional(async (tx) => (await createTask(tx as never, {
    type: 'BACKUP', cloud: tx.getReference(Cloud, w.cloudId), project: web1.project, instance: web1, destination: tx.getReference(BackupDestination, w.destinationId),
    maxAttempts: 1, priority: 60, params: { type: 'AUTO' },
  }, null)).id);
  const reload = () => systemFork(w.orm).findOneOrFail(Task, taskId, { populate: ['dataMover'], filters: false });
  // Interrupted while it waits for OpenStack (a later phase, cleanup, is finished instead).
  await waitFor('the backup waiting for its snapshots on worker A', async () => {
    const t = await reload();
    return t.state === 'RUNNING' && t.dataMover?.name === moverA && t.phase === 'snapshot';
  }, 60_000);

  a.child.kill('SIGTERM');
  // 0 is a clean shutdown; the bounded hard exit would be 1.
  expect(await a.exited).toEqual({ code: 0, signal: null });
  expect(a.stdout()).toMatch(/handing back 1 running task/);
  expect(a.stdout()).toMatch(/shutdown complete/);
  expect((await systemFork(w.orm).findOneOrFail(DataMover, { name: moverA })).stoppedAt).toBeInstanceOf(Date);
  const handedBack = await reload();
  expect([handedBack.state, handedBack.error]).toEqual(['QUEUED', HANDED_BACK_NOTE]);

  const b = startWorker('b');
  const moverB = (await b.waitForOutput(/data mover (\S+) running/))[1]!;

  const task = await waitFor('the task to end', async () => {
    const t = await reload();
    return ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(t.state) ? t : null;
  }, 120_000);
  expect(task.error ?? null).toBeNull();
  expect(task.state).toBe('SUCCEEDED');
  expect(task.dataMover?.name).toBe(moverB);
  expect(task.attempt).toBe(1);

  // One backup record for the task, complete, and its disks are the volumes as they were.
  const backups = await systemFork(w.orm).find(Backup, { instance: web1.id }, { filters: false });
  expect(backups).toHaveLength(1);
  const [backup] = backups as [Backup];
  expect(backup).toMatchObject({ state: 'AVAILABLE' });
  expect(task.backup?.id).toBe(backup.id);
  expect(backup.frontEndBytes).toBe(2n * BigInt(w.t.sim.gibBytes));
  const dest = await systemFork(w.orm).findOneOrFail(BackupDestination, w.destinationId);
  const repo = await openDestinationRepository(dest, secrets, { workers: 1 });
  try {
    expect((await repo.list()).map((r) => r.id)).toEqual([backup.repositoryBackupId]);
    for (const [i, name] of ['web-1-root', 'web-1-data'].entries()) {
      const out = path.join(w.repoDir, `restored-${i}.raw`);
      await repo.restore(backup.repositoryBackupId!, i, { kind: 'file', path: out });
      expect(sha(readFileSync(out)), name).toBe(atBackup[name]);
    }
  } finally {
    await repo.close();
  }

  b.child.kill('SIGTERM');
  expect(await b.exited).toEqual({ code: 0, signal: null });
}, 240_000);
