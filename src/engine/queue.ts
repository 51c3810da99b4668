// The durable job queue: graphile-worker in the same PostgreSQL (jobs picked within ~50 ms
// through LISTEN/NOTIFY). A Task row is the product's record; a job is only "run task X". Jobs
// are routed by identifier — the task type, plus `@<node configuration id>` when a node
// configuration serves the task (`backup`, `backup@0192…`) — and a data mover asks only for the
// types it can run, for its own configuration: a job only ever runs on an eligible data mover.
import { Logger, runMigrations } from 'graphile-worker';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Pool } from 'pg';
import type { Task, TaskType } from '../db/entities/index.ts';
import { logger } from '../observability/logger.ts';

export const JOB_SCHEMA = 'graphile_worker';

export function jobIdentifier(type: TaskType, nodeConfigurationId: string | null | undefined): string {
  const name = type.toLowerCase();
  return nodeConfigurationId ? `${name}@${nodeConfigurationId}` : name;
}

export type TaskJobPayload = { taskId: string };

/** Creates or upgrades the queue's tables (idempotent; safe from several processes). */
export async function installQueue(pgPool: Pool): Promise<void> {
  await runMigrations({ pgPool, schema: JOB_SCHEMA, logger: quietLogger });
}

/**
 * Adds the job for `task` in the caller's transaction, so the job exists if and only if the
 * task row does. The job key is the task ID: enqueuing twice never makes two jobs.
 */
export async function addTaskJob(em: EntityManager, task: Task, nodeConfigurationId: string | null, opts: { runAt?: Date } = {}): Promise<void> {
  await em.execute(
    `select ${JOB_SCHEMA}.add_job(?, json_build_object('taskId', ?::text), run_at => ?::timestamptz, max_attempts => ?, job_key => ?, priority => ?, job_key_mode => 'preserve_run_at')`,
    [jobIdentifier(task.type, nodeConfigurationId), task.id, (opts.runAt ?? task.notBefore ?? new Date()).toISOString(), task.maxAttempts, task.id, 100 - task.priority],
  );
}

/** Removes the job of a task that will not run (cancelled while queued). */
export async function removeTaskJob(em: EntityManager, taskId: string): Promise<void> {
  await em.execute(`select ${JOB_SCHEMA}.remove_job(?)`, [taskId]);
}

/** graphile-worker's own chatter stays out of the service's output; errors still show. */
export const quietLogger = new Logger(() => (level, message) => {
  if (level === 'error') logger.error({ component: 'queue' }, message);
  else if (level === 'warning' && !/already running|No tasks|data mover is shutting down/.test(message)) logger.warn({ component: 'queue' }, message);
});
