// The scheduler: one leader among every process on the database (a session advisory lock held
// on a dedicated connection). Each tick the leader
//   1. hands back the jobs of data movers that stopped heartbeating (their lease expired),
//   2. fails queued tasks whose start window has passed,
//   3. creates the tasks of policies' scheduled runs, spread over each run's window;
//   4. once a day (from `pruneHourUtc`, away from nightly backup windows) queues one PRUNE task
//      per enabled policy that has a retention rule (src/engine/maintenance/prune-executor.ts).
// Every created task carries a unique schedule key, so two leaders in a row never create one twice.
import pg from 'pg';
import { UniqueConstraintViolationException } from '@mikro-orm/core';
import { AuditEvent, Policy, Task } from '../../db/entities/index.ts';
import { systemFork, type Orm } from '../../db/orm.ts';
import { taskOutcomeEvent } from '../audit-trail.ts';
import { HEARTBEAT_MS } from '../data-mover.ts';
import { JOB_SCHEMA } from '../queue.ts';
import { createTask, TaskError } from '../tasks/tasks.ts';
import type { Publisher } from '../tasks/progress.ts';
import { Channels, taskEvent } from '../../events/channels.ts';
import { instancesOfPolicy } from './assignment.ts';
import { plannedRuns } from './schedule.ts';
import { spreadStarts } from './spread.ts';
import { hasRetentionRule } from '../retention.ts';
import { logger } from '../../observability/logger.ts';

const LEADER_LOCK = `hashtext('strongbox.scheduler')`;
/** A data mover silent for this long is gone; its jobs go back to the queue. */
export const LEASE_MS = 6 * HEARTBEAT_MS;

export type SchedulerOptions = {
  orm: Orm;
  databaseUrl: string;
  publisher: Publisher;
  tickMs?: number;
  /** How far ahead runs are created, so spread starts can be queued before they are due. */
  lookaheadMs?: number;
  now?: () => Date;
  /** Silence after which a data mover counts as dead (default LEASE_MS). */
  leaseMs?: number;
  /** UTC hour from which each day's PRUNE tasks are queued (default 12). */
  pruneHourUtc?: number;
};

export type RunningScheduler = { isLeader(): boolean; tick(): Promise<TickReport>; stop(): Promise<void> };
export type TickReport = { released: number; expired: number; created: number; prunes: number };

export async function startScheduler(opts: SchedulerOptions): Promise<RunningScheduler> {
  const now = opts.now ?? (() => new Date());
  const client = new pg.Client({ connectionString: opts.databaseUrl });
  await client.connect();
  client.on('error', () => {
    leader = false; // the lock went with the connection
  });
  let leader = false;
  let stopped = false;
  // Schedule keys of prunes this process knows exist, so a tick does not ask the database again.
  const prunesQueued = new Set<string>();
  // The first tick looks back a whole day (the longest start window): runs whose window is
  // still open after a restart or a change of leader are caught; schedule keys prevent twins.
  let lastTick = new Date(now().getTime() - 24 * 3600_000);

  async function tryLead() {
    if (leader) return true;
    const { rows } = await client.query(`select pg_try_advisory_lock(${LEADER_LOCK}) as ok`);
    leader = rows[0].ok === true;
    return leader;
  }

  // Ticks of one scheduler never overlap (the timer's and explicit ones).
  let running: Promise<unknown> = Promise.resolve();
  function tick(): Promise<TickReport> {
    const next = running.then(tickOnce, tickOnce);
    running = next.catch(() => {});
    return next;
  }

  async function tickOnce(): Promise<TickReport> {
    const report: TickReport = { released: 0, expired: 0, created: 0, prunes: 0 };
    if (!(await tryLead())) return report;
    const t = now();
    report.released = await releaseDeadMovers(opts.orm, t, opts.leaseMs ?? LEASE_MS);
    report.expired = await failExpired(opts, t);
    const from = lastTick;
    const to = new Date(t.getTime() + (opts.lookaheadMs ?? 60_000));
    report.created = await createScheduledTasks(opts, from, to, t);
    lastTick = to;
    report.prunes = await createPruneTasks(opts, t, prunesQueued);
    return report;
  }

  let timer: NodeJS.Timeout | undefined;
  const loop = async () => {
    if (stopped) return;
    try {
      await tick();
    } catch (e) {
      logger.error({ component: 'scheduler', err: e }, 'scheduler tick failed');
    }
    if (!stopped) timer = setTimeout(loop, opts.tickMs ?? 15_000);
  };
  timer = setTimeout(loop, 0);

  return {
    isLeader: () => leader,
    tick,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await client.end().catch(() => {});
    },
  };
}

async function releaseDeadMovers(orm: Orm, t: Date, leaseMs: number): Promise<number> {
  const em = systemFork(orm);
  const dead: { id: string; worker_ids: string[] }[] = await em.execute(
    `update data_mover set stopped_at = ? where stopped_at is null and last_heartbeat_at < ? returning id, worker_ids`,
    [t, new Date(t.getTime() - leaseMs)],
  );
  const workerIds = dead.flatMap((d) => d.worker_ids);
  if (workerIds.length > 0) {
    await em.execute(`select ${JOB_SCHEMA}.force_unlock_workers(array(select jsonb_array_elements_text(?::jsonb)))`, [JSON.stringify(workerIds)]);
  }
  return dead.length;
}

async function failExpired(opts: SchedulerOptions, t: Date): Promise<number> {
  const em = systemFork(opts.orm);
  const expired = await em.find(Task, { state: 'QUEUED', startedAt: null, deadline: { $lt: t } });
  for (const task of expired) {
    task.state = 'FAILED';
    task.finishedAt = t;
    task.error = `could not start inside its window (ended ${task.deadline!.toISOString()})`;
    em.create(AuditEvent, taskOutcomeEvent(task, 'FAILED', task.error));
    await em.execute(`select ${JOB_SCHEMA}.remove_job(?)`, [task.id]);
  }
  await em.flush();
  for (const task of expired) await opts.publisher.publish(Channels.task, taskEvent(task, 'STATE'));
  return expired.length;
}

async function createScheduledTasks(opts: SchedulerOptions, from: Date, to: Date, t: Date) {
  const em = systemFork(opts.orm);
  const policies = await em.find(Policy, { enabled: true });
  let backups = 0;
  for (const policy of policies) {
    const runs = policy.schedules.flatMap((s) => plannedRuns(s, from, to)).filter((r) => r.windowEnd > t);
    if (runs.length === 0) continue;
    const instances = await instancesOfPolicy(em, policy);
    for (const run of runs) {
      const plan = spreadStarts(instances.map((i) => ({ id: i.id, priority: policy.priority, instance: i })), run.at, run.windowEnd);
      for (const { item, startAt } of plan) {
        const scheduleKey = `backup:${policy.id}:${item.id}:${run.at.toISOString()}`;
        const created = await em.fork().transactional(async (tx) => {
          if (await tx.count(Task, { scheduleKey })) return null;
          const instance = item.instance;
          return createTask(tx as never, {
            type: 'BACKUP',
            cloud: instance.cloud,
            project: instance.project,
            instance,
            policy,
            destination: policy.destination,
            priority: policy.priority,
            maxAttempts: policy.retries + 1,
            notBefore: startAt,
            deadline: run.windowEnd,
            scheduleKey,
            params: { type: 'AUTO', scheduled: true },
          }, null).catch((e) => {
            if (!(e instanceof TaskError) || e.code !== 'QUOTA_EXCEEDED') throw e;
            // Recorded as a failed task, so the refusal shows where the backup was expected.
            const failed = tx.create(Task, {
              type: 'BACKUP', cloud: instance.cloud, project: instance.project, instance, policy, scheduleKey, state: 'FAILED', finishedAt: t,
              error: e.message,
            });
            tx.create(AuditEvent, taskOutcomeEvent(failed, 'FAILED', e.message));
            return failed;
          });
        }).catch(alreadyCreated);
        if (created) backups++;
      }
    }
  }
  return backups;
}

/** Today's PRUNE task of each enabled policy with a retention rule, once `pruneHourUtc` is reached. */
async function createPruneTasks(opts: SchedulerOptions, t: Date, known: Set<string>): Promise<number> {
  const day = t.toISOString().slice(0, 10);
  const dayStart = new Date(`${day}T00:00:00.000Z`).getTime();
  if (t.getTime() < dayStart + (opts.pruneHourUtc ?? 12) * 3600_000) return 0;
  const em = systemFork(opts.orm);
  let created = 0;
  for (const policy of await em.find(Policy, { enabled: true })) {
    if (!hasRetentionRule(policy.retention)) continue;
    const scheduleKey = `prune:${policy.id}:${day}`;
    if (known.has(scheduleKey)) continue;
    const task = await em.fork().transactional(async (tx) => {
      if (await tx.count(Task, { scheduleKey })) return null;
      return createTask(tx as never, {
        type: 'PRUNE', policy, priority: 20, maxAttempts: policy.retries + 1, notBefore: t,
        deadline: new Date(dayStart + 24 * 3600_000), scheduleKey, params: { scheduled: true },
      }, null);
    }).catch(alreadyCreated);
    known.add(scheduleKey);
    if (task) created++;
  }
  for (const key of known) if (!key.endsWith(day)) known.delete(key);
  return created;
}

/** Another leader (just before a change of leadership) created it first: nothing to do. */
function alreadyCreated(e: unknown): null {
  if (e instanceof UniqueConstraintViolationException) return null;
  throw e;
}
