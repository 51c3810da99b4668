// A data mover: a process (or a part of `serve`) that takes jobs from the queue and runs them.
// It registers itself, heartbeats, serves only the jobs of its node configuration, and on a
// clean stop takes no new job, lets its running tasks finish within a grace period, then aborts
// the rest and hands them back: QUEUED again, the job unlocked without using an attempt, so
// another data mover resumes them (a backup's retry reuses its Backup row; the repository's
// crash safety makes the restart safe).
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { EventEmitter } from 'node:events';
import { run, type Runner, type Task as JobHandler, type WorkerEvents } from 'graphile-worker';
import { DataMover, NodeConfiguration, type TaskType } from '../db/entities/index.ts';
import { systemFork, type Orm } from '../db/orm.ts';
import { installQueue, JOB_SCHEMA, jobIdentifier, quietLogger, type TaskJobPayload } from './queue.ts';
import { runTask, type Executors } from './task-runner.ts';
import { lifecycleLog } from '../shutdown.ts';
import type { Publisher } from './tasks/progress.ts';
import { logger } from '../observability/logger.ts';

export const HEARTBEAT_MS = 5_000;
/** How long `stop()` lets running tasks finish by default before handing them back. */
export const DEFAULT_STOP_GRACE_MS = 5_000;

export type DataMoverOptions = {
  orm: Orm;
  databaseUrl: string;
  executors: Executors;
  publisher: Publisher;
  /** Serve this node configuration's jobs; none: the jobs no configuration claims. */
  nodeConfiguration?: string;
  /** Concurrent tasks; default: the node configuration's setting, else 2. */
  concurrency?: number;
  name?: string;
};

export type RunningDataMover = {
  id: string;
  name: string;
  /** Takes no new job; running tasks get `graceMs` to finish, then are handed back. */
  stop(graceMs?: number): Promise<void>;
};

class DataMoverShutdown extends Error {
  constructor() {
    super('the data mover is shutting down');
  }
}

export class DataMoverError extends Error {
  static unknownNodeConfiguration(name: string) {
    return new DataMoverError(`no node configuration named ${JSON.stringify(name)}`);
  }
}

export async function startDataMover(opts: DataMoverOptions): Promise<RunningDataMover> {
  const em = systemFork(opts.orm);
  let nodeConfiguration: NodeConfiguration | null = null;
  if (opts.nodeConfiguration) {
    nodeConfiguration = await em.findOne(NodeConfiguration, { name: opts.nodeConfiguration });
    if (!nodeConfiguration) throw DataMoverError.unknownNodeConfiguration(opts.nodeConfiguration);
  }
  const concurrency = opts.concurrency ?? nodeConfiguration?.concurrentTasks ?? 2;
  const name = opts.name ?? `${os.hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const mover = em.create(DataMover, {
    name,
    host: os.hostname(),
    pid: process.pid,
    version: process.env.npm_package_version,
    nodeConfiguration: nodeConfiguration ?? undefined,
  });
  await em.flush();

  const pgPool = new pg.Pool({ connectionString: opts.databaseUrl, max: concurrency + 2 });
  // An idle client's error (database restart) must not crash the process; the pool reconnects.
  const lost = (e: Error) => logger.warn({ component: 'data mover', error: e.message }, 'database connection lost');
  pgPool.on('error', lost);
  pgPool.on('connect', (client) => client.on('error', lost));
  await installQueue(pgPool);
  let running = 0;
  // Aborted when the grace period of `stop` ends: the tasks still running are handed back.
  const shutdown = new AbortController();
  const handler: JobHandler = async (payload, helpers) => {
    const { taskId } = payload as TaskJobPayload;
    running++;
    try {
      const { outcome, error } = shutdown.signal.aborted
        ? { outcome: 'HANDED_BACK' as const, error: shutdown.signal.reason }
        : await runTask(opts.orm, opts.executors, opts.publisher, taskId, helpers.job.attempts, helpers.job.max_attempts, mover.id, shutdown.signal);
      if (outcome === 'HANDED_BACK') {
        // Give the attempt back, then fail the job: the queue unlocks it and another data
        // mover takes it after the shortest backoff (a second).
        await helpers.withPgClient((client) => client.query(`update ${JOB_SCHEMA}._private_jobs set attempts = greatest(attempts - 1, 0) where id = $1`, [helpers.job.id]));
        throw error;
      }
      // Throwing makes the queue retry with exponential backoff.
      if (outcome === 'RETRY') throw error;
    } finally {
      running--;
    }
  };
  // Jobs are locked by the pool's ID (and by worker IDs in other modes): keep both, so a
  // scheduler can hand this process's jobs back if it dies. Listen before `run` creates them.
  const workerIds = new Set<string>();
  const events = new EventEmitter() as WorkerEvents;
  const remember = (id: string) => {
    workerIds.add(id);
    void beat().catch(() => {});
  };
  events.on('pool:create', ({ workerPool }) => remember(workerPool.id));
  events.on('worker:create', ({ worker }) => remember(worker.workerId));
  const runner: Runner = await run({
    events,
    pgPool,
    schema: JOB_SCHEMA,
    concurrency,
    noHandleSignals: true,
    pollInterval: 2_000,
    logger: quietLogger,
    taskList: Object.fromEntries(Object.keys(opts.executors).map((type) => [jobIdentifier(type as TaskType, nodeConfiguration?.id), handler])),
  });


  async function beat() {
    await opts.orm.em.getConnection().execute(
      `update data_mover set last_heartbeat_at = now(), running_tasks = ?, worker_ids = ?::jsonb, updated_at = now() where id = ?`,
      [running, JSON.stringify([...workerIds]), mover.id],
    );
  }
  await beat();
  const heartbeat = setInterval(() => void beat().catch(() => {}), HEARTBEAT_MS);

  return {
    id: mover.id,
    name,
    async stop(graceMs = DEFAULT_STOP_GRACE_MS) {
      if (running > 0) lifecycleLog(`data mover ${name}: stopping; ${running} running task(s) get ${graceMs / 1000} s to finish, then are handed back`);
      const handBack = setTimeout(() => {
        if (running > 0) lifecycleLog(`data mover ${name}: handing back ${running} running task(s)`);
        shutdown.abort(new DataMoverShutdown());
      }, graceMs);
      try {
        // Stops taking jobs at once; resolves when every running job has ended.
        await runner.stop();
      } finally {
        clearTimeout(handBack);
        // Heartbeats go on meanwhile: the scheduler must not think this mover dead.
        clearInterval(heartbeat);
      }
      await opts.orm.em.getConnection().execute(`update data_mover set stopped_at = now(), running_tasks = 0 where id = ?`, [mover.id]);
      await pgPool.end();
    },
  };
}
