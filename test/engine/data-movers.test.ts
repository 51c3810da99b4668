// The task engine end to end on a real PostgreSQL: queue, data movers, routing, crash
// recovery, cancellation, windows and scheduler leadership.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DataMover, NodeConfiguration, Policy, Task, type Instance } from '../../src/db/entities/index.ts';
import { openOrm, systemFork, type Orm } from '../../src/db/orm.ts';
import { startDataMover, type RunningDataMover } from '../../src/engine/data-mover.ts';
import { enqueueTask } from '../../src/engine/tasks/enqueue.ts';
import { startScheduler } from '../../src/engine/scheduler/scheduler.ts';
import { HANDED_BACK_NOTE, type Executors } from '../../src/engine/task-runner.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { seeder } from '../helpers/seed.ts';
import { waitFor } from '../helpers/wait-for.ts';

/** The engine's events go nowhere in these tests (subscriptions are tested in tasks-api). */
const publisher = { publish: async () => {} };

describe('task engine', () => {
  let orm: Orm;
  let url: string;
  let drop: () => Promise<void>;
  const movers: RunningDataMover[] = [];
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    const db = await createTestDatabase();
    url = db.url;
    drop = db.drop;
    orm = await openOrm(url);
  });
  afterEach(async () => {
    for (const m of movers.splice(0)) await m.stop().catch(() => {});
  });
  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await orm?.close();
    await drop?.();
  });

  async function queueBackup(instance: Instance) {
    return systemFork(orm).transactional(async (em) => {
      const task = em.create(Task, { type: 'BACKUP', project: instance.project.id, instance: instance.id, cloud: instance.cloud.id });
      await em.flush();
      await enqueueTask(em as never, task);
      return task.id;
    });
  }
  const reload = (id: string) => systemFork(orm).findOneOrFail(Task, id);

  it('runs a job only on a data mover of the node configuration serving its zone; two movers share the queue', async () => {
    const s = seeder(orm);
    const cloud = await s.cloud();
    const project = await s.project(cloud);
    const nc = await s.nodeConfiguration();
    const inA = await s.instances(project, 4, { zone: await s.zone(cloud, { nodeConfiguration: nc }) });
    const inB = await s.instances(project, 4, { zone: await s.zone(cloud) });

    const ran: Record<string, string[]> = {};
    const executors = (who: string): Executors => ({
      BACKUP: async (ctx) => {
        (ran[who] ??= []).push(ctx.task.instance!.id);
        await ctx.phase('store');
        ctx.progress({ bytesDone: 50n, bytesTotal: 100n });
      },
    });
    movers.push(await startDataMover({ orm, databaseUrl: url, executors: executors('a'), publisher, nodeConfiguration: nc.name, name: 'mover-a' }));
    movers.push(await startDataMover({ orm, databaseUrl: url, executors: executors('default-1'), publisher, name: 'mover-d1' }));
    movers.push(await startDataMover({ orm, databaseUrl: url, executors: executors('default-2'), publisher, name: 'mover-d2' }));

    const ids = [...(await Promise.all(inA.map(queueBackup))), ...(await Promise.all(inB.map(queueBackup)))];
    await waitFor('all tasks to succeed', async () => (await Promise.all(ids.map(reload))).every((t) => t.state === 'SUCCEEDED'));

    expect(new Set(ran.a)).toEqual(new Set(inA.map((i) => i.id)));
    expect(new Set([...(ran['default-1'] ?? []), ...(ran['default-2'] ?? [])])).toEqual(new Set(inB.map((i) => i.id)));
    const done = await reload(ids[0]!);
    expect(done.attempt).toBe(1);
    expect([done.bytesDone, done.bytesTotal]).toEqual([100n, 100n]);
    expect(Object.keys(done.phaseSeconds)).toEqual(expect.arrayContaining(['queued', 'store']));
    const movers_ = await systemFork(orm).find(DataMover, {});
    expect(movers_.map((m) => m.name)).toEqual(expect.arrayContaining(['mover-a', 'mover-d1', 'mover-d2']));
  });

  it('retries on another data mover after one is killed with -9 mid-task', async () => {
    const s = seeder(orm);
    const [instance] = (await s.instances(await s.project(await s.cloud()), 1)) as [Instance];

    const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/data-mover-process.ts'], {
      env: { ...process.env, DATABASE_URL: url, MOVER_NAME: 'doomed' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(child);
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    await waitFor('child mover ready', async () => out.includes('READY'));
    const taskId = await queueBackup(instance);
    await waitFor('task running in the child', async () => out.includes(`RUNNING ${taskId}`));
    child.kill('SIGKILL');
    await once(child, 'exit');

    movers.push(await startDataMover({ orm, databaseUrl: url, publisher, name: 'survivor', executors: { BACKUP: async (ctx) => { await ctx.phase('store'); } } }));
    const scheduler = await startScheduler({ orm, databaseUrl: url, publisher, tickMs: 60_000, leaseMs: 1_000 });
    try {
      await waitFor('the lease to expire and the job to be handed back', async () => (await scheduler.tick()).released > 0);
      const task = await waitFor('task to succeed on retry', async () => {
        const t = await reload(taskId);
        return t.state === 'SUCCEEDED' ? t : null;
      });
      expect(task.attempt).toBe(2);
      const survivor = await systemFork(orm).findOneOrFail(DataMover, { name: 'survivor' });
      expect(task.dataMover?.id).toBe(survivor.id);
      const doomed = await systemFork(orm).findOneOrFail(DataMover, { name: 'doomed' });
      expect(doomed.stoppedAt).toBeInstanceOf(Date);
    } finally {
      await scheduler.stop();
    }
  });

  it('cancels a running task cooperatively and runs its cleanup', async () => {
    const s = seeder(orm);
    const [instance] = (await s.instances(await s.project(await s.cloud()), 1)) as [Instance];
    let cleanedUp = false;
    movers.push(await startDataMover({
      orm, databaseUrl: url, publisher, name: 'canceller',
      executors: {
        BACKUP: async (ctx) => {
          await ctx.phase('export');
          try {
            await new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true }));
          } finally {
            cleanedUp = true;
          }
        },
      },
    }));
    const taskId = await queueBackup(instance);
    await waitFor('task running', async () => (await reload(taskId)).state === 'RUNNING');
    await systemFork(orm).nativeUpdate(Task, { id: taskId }, { cancelRequested: true });
    const task = await waitFor('task cancelled', async () => {
      const t = await reload(taskId);
      return t.state === 'CANCELLED' ? t : null;
    });
    expect(cleanedUp).toBe(true);
    expect(task.finishedAt).toBeInstanceOf(Date);
  });

  it('a stopping data mover takes no new job and lets a running task finish within the grace period', async () => {
    const s = seeder(orm);
    const [a, b] = (await s.instances(await s.project(await s.cloud()), 2)) as [Instance, Instance];
    let finish!: () => void;
    const ran: string[] = [];
    const mover = await startDataMover({
      orm, databaseUrl: url, publisher, name: 'finisher', concurrency: 1,
      executors: {
        BACKUP: async (ctx) => {
          ran.push(ctx.task.id);
          await ctx.phase('store');
          await new Promise<void>((resolve) => (finish = resolve));
        },
      },
    });
    const first = await queueBackup(a);
    await waitFor('task running', async () => (await reload(first)).state === 'RUNNING');
    const stopped = mover.stop(60_000);
    const second = await queueBackup(b);
    finish();
    await stopped;
    const task = await reload(first);
    expect(task.state).toBe('SUCCEEDED');
    expect(ran).toEqual([first]);
    expect((await reload(second)).state).toBe('QUEUED');
    await systemFork(orm).nativeUpdate(Task, { id: second }, { cancelRequested: true });
  });

  it('a data mover stopping after its grace period hands a running task back: another one resumes it, same attempt', async () => {
    const s = seeder(orm);
    const [instance] = (await s.instances(await s.project(await s.cloud()), 1)) as [Instance];
    let interrupted = false;
    const leaving = await startDataMover({
      orm, databaseUrl: url, publisher, name: 'leaving',
      executors: {
        BACKUP: async (ctx) => {
          await ctx.phase('store');
          ctx.progress({ bytesDone: 10n, bytesTotal: 100n });
          await new Promise((_, reject) => ctx.signal.addEventListener('abort', () => {
            interrupted = true;
            reject(ctx.signal.reason);
          }, { once: true }));
        },
      },
    });
    const taskId = await queueBackup(instance);
    await waitFor('task running', async () => (await reload(taskId)).state === 'RUNNING');
    await leaving.stop(0);
    expect(interrupted).toBe(true);
    const handedBack = await reload(taskId);
    expect(handedBack.state).toBe('QUEUED');
    expect(handedBack.error).toBe(HANDED_BACK_NOTE);
    const [job] = await systemFork(orm).getConnection().execute(`select attempts, max_attempts, locked_by from graphile_worker._private_jobs where key = ?`, [taskId]);
    expect(job).toMatchObject({ attempts: 0, locked_by: null });

    movers.push(await startDataMover({ orm, databaseUrl: url, publisher, name: 'successor', executors: { BACKUP: async (ctx) => { await ctx.phase('store'); } } }));
    const task = await waitFor('task to succeed on the successor', async () => {
      const t = await reload(taskId);
      return t.state === 'SUCCEEDED' ? t : null;
    });
    expect(task.attempt).toBe(1);
    const successor = await systemFork(orm).findOneOrFail(DataMover, { name: 'successor' });
    expect(task.dataMover?.id).toBe(successor.id);
  });

  it('elects one scheduler leader among two processes: scheduled tasks are created once; missed windows fail', async () => {
    const s = seeder(orm);
    const project = await s.project(await s.cloud());
    const covered = await s.instances(project, 5);
    const instance = covered[0]!;
    const em = systemFork(orm);
    const late = em.create(Task, { type: 'BACKUP', project: project.id, instance: instance.id, deadline: new Date(Date.now() - 1000) });
    // A policy whose run started a minute ago, with a 30-minute window, covering 5 instances.
    const at = new Date(Date.now() - 60_000);
    const hhmm = `${String(at.getUTCHours()).padStart(2, '0')}:${String(at.getUTCMinutes()).padStart(2, '0')}`;
    const policy = em.create(Policy, { name: `nightly-${Date.now()}`, schedules: [{ timesOfDay: [hhmm], windowMinutes: 30 }], rules: [{ projectId: project.id }] });
    await em.flush();
    const options = { orm, databaseUrl: url, publisher, tickMs: 60_000, lookaheadMs: 0 };
    const a = await startScheduler(options);
    const b = await startScheduler(options);
    try {
      await Promise.all([a.tick(), b.tick(), a.tick(), b.tick()]);
      expect([a.isLeader(), b.isLeader()].filter(Boolean)).toHaveLength(1);
      const scheduled = await systemFork(orm).find(Task, { policy: policy.id, type: 'BACKUP' });
      expect(scheduled.map((t) => t.instance!.id).sort()).toEqual(covered.map((i) => i.id).sort());
      // Spread over the window, none after its end.
      const starts = new Set(scheduled.map((t) => t.notBefore!.getTime()));
      expect(starts.size).toBe(5);
      expect(scheduled.every((t) => t.deadline!.getTime() - t.notBefore!.getTime() > 0)).toBe(true);
      expect(await systemFork(orm).count(Task, { policy: policy.id, type: 'PRUNE' })).toBe(0); // no destination, no prune
      const t = await reload(late.id);
      expect(t.state).toBe('FAILED');
      expect(t.error).toMatch(/could not start inside its window/);
    } finally {
      await a.stop();
      await b.stop();
    }
  });
});
