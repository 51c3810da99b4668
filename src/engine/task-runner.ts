// Runs one task on a data mover: claims it, walks it through its phases, watches for
// cancellation, and records the outcome. What a task *does* is its executor's business
// (a backup strategy, a restore, an inventory sync…); this file is the life cycle around it.
// Phases, progress, rate/ETA, persistence and events go through the ProgressReporter.
// Each final outcome (not a retry) is recorded in the audit trail.
import type { EntityManager } from '@mikro-orm/postgresql';
import { FinalTaskStates, Task, type TaskType } from '../db/entities/index.ts';
import { systemFork, type Orm } from '../db/orm.ts';
import { Channels, taskEvent } from '../events/channels.ts';
import { taskOutcomeEvent, writeAuditEvents } from './audit-trail.ts';
import { ProgressReporter, type Publisher } from './tasks/progress.ts';
import { tasksFinished } from '../observability/metrics.ts';
import { log, newRequestId, withRequestId } from '../observability/request-context.ts';
import { inSpan, linkTo, startSpan } from '../observability/tracing.ts';
import { SpanStatusCode, trace, type Span } from '@opentelemetry/api';

export type TaskProgress = { bytesDone: bigint; bytesTotal: bigint };

export type TaskContext = {
  task: Task;
  /** A system fork for the executor's own reads and writes. */
  em: EntityManager;
  /** Aborted when the task is cancelled or the data mover shuts down. */
  signal: AbortSignal;
  /** The 1-based attempt this run is. */
  attempt: number;
  dataMoverId: string;
  /** Enter a phase (snapshot, export, store, cleanup…); time spent per phase is recorded. */
  phase(name: string, bytesTotal?: bigint): Promise<void>;
  /** Bytes done (throttled events with rate and ETA). */
  progress(p: TaskProgress): void;
};

export type Executor = (ctx: TaskContext) => Promise<{ backupId?: string } | void>;
export type Executors = Partial<Record<TaskType, Executor>>;

export class TaskCancelled extends Error {
  constructor() {
    super('cancelled');
  }
}

const CANCEL_POLL_MS = 500;

export type RunOutcome = 'SUCCEEDED' | 'FAILED' | 'CANCELLED' | 'RETRY' | 'SKIPPED' | 'HANDED_BACK';

/** The task's note while it waits for another data mover after a shutdown interrupted it. */
export const HANDED_BACK_NOTE = 'interrupted by a data mover shutdown; resumes on another data mover';

/**
 * Run task `taskId` as attempt `attempt` of `maxAttempts`. Returns how it ended; 'RETRY' means
 * the queue should run it again later (the caller throws so graphile-worker backs off);
 * 'HANDED_BACK' means `shutdown` interrupted it: it is QUEUED again and this attempt does not
 * count (the caller gives the job back to the queue).
 */
export async function runTask(...args: Parameters<typeof runTaskNow>): ReturnType<typeof runTaskNow> {
  const [orm, , , taskId] = args;
  // The task runs under the request ID of the request that created it (or a new one), in a
  // trace of its own linked to that request's span.
  const [row] = await orm.em.getConnection().execute(`select request_id, traceparent from task where id = ?`, [taskId]);
  return withRequestId(row?.request_id ?? newRequestId(), () => inSpan('task', { 'strongbox.task_id': taskId }, () => runTaskNow(...args), linkTo(row?.traceparent)), { taskId });
}

async function runTaskNow(
  orm: Orm,
  executors: Executors,
  publisher: Publisher,
  taskId: string,
  attempt: number,
  maxAttempts: number,
  dataMoverId: string,
  shutdown?: AbortSignal,
): Promise<{ outcome: RunOutcome; error?: unknown }> {
  const em = systemFork(orm);
  const task = await em.findOne(Task, taskId);
  if (!task || FinalTaskStates.includes(task.state)) return { outcome: 'SKIPPED' };
  // A final outcome goes to the audit trail and the finished-tasks counter.
  const recordOutcome = async (state: 'SUCCEEDED' | 'FAILED' | 'CANCELLED', error?: string) => {
    await writeAuditEvents(orm, [taskOutcomeEvent(task, state, error)]);
    tasksFinished.inc({ type: task.type, state });
  };
  const end = async (state: 'FAILED' | 'CANCELLED', error?: string) => {
    Object.assign(task, { state, error, finishedAt: new Date() });
    await em.flush();
    await recordOutcome(state, error);
    await publisher.publish(Channels.task, taskEvent(task, 'STATE'));
    return { outcome: state } as const;
  };
  if (task.cancelRequested) return end('CANCELLED');
  if (task.deadline && new Date() > task.deadline && !task.startedAt) {
    return end('FAILED', `could not start inside its window (ended ${task.deadline.toISOString()})`);
  }
  const executor = executors[task.type];
  if (!executor) return end('FAILED', `no executor for ${task.type} tasks on this data mover`);

  // Claim: only a QUEUED (or orphaned RUNNING) task that nobody cancelled meanwhile.
  const claimed = await em.execute(
    `update task set state = 'RUNNING', attempt = ?, data_mover_id = ?, started_at = coalesce(started_at, now()), updated_at = now()
      where id = ? and state in ('QUEUED', 'RUNNING') and not cancel_requested returning id`,
    [attempt, dataMoverId, taskId],
  );
  if (claimed.length === 0) return { outcome: 'SKIPPED' };
  await em.refresh(task);

  const queued = task.phaseSeconds.queued ?? (Date.now() - (task.notBefore ?? task.createdAt).getTime()) / 1000;
  const reporter = new ProgressReporter(systemFork(orm), publisher, task.id, task.project?.id ?? null, {
    phaseSeconds: { ...task.phaseSeconds, queued: Math.max(0, queued) },
  });
  // Reporter writes go one after another: a progress write in flight must not race the end.
  let writes: Promise<unknown> = reporter.start('start');
  const then = (f: () => Promise<unknown>) => (writes = writes.then(f, f));

  const abort = new AbortController();
  const onShutdown = () => abort.abort(shutdown?.reason);
  shutdown?.addEventListener('abort', onShutdown);
  let cancelled = false;
  const watch = setInterval(async () => {
    try {
      const [row] = await orm.em.getConnection().execute(`select cancel_requested from task where id = ?`, [taskId]);
      if (row?.cancel_requested && !abort.signal.aborted) {
        cancelled = true;
        abort.abort(new TaskCancelled());
      }
    } catch {
      // A transient database error: the next poll tries again.
    }
  }, CANCEL_POLL_MS);

  // One log line per phase when it ends, and one when the task ends.
  // Phase spans are children of the task's span, beside the OpenStack calls made meanwhile.
  trace.getActiveSpan()?.updateName(`task ${task.type}`).setAttributes({ 'strongbox.task_type': task.type, 'strongbox.attempt': attempt });
  const started = performance.now();
  let phase: { name: string; started: number; span: Span } = { name: 'start', started, span: startSpan('task.phase start') };
  const logPhase = (outcome: string, error?: string) => {
    phase.span.setAttribute('strongbox.outcome', outcome).end();
    log().info({ taskType: task.type, phase: phase.name, outcome, durationMs: Math.round(performance.now() - phase.started), ...(error ? { error } : {}) }, 'task phase');
  };
  const logEnd = (outcome: RunOutcome, error?: string) => {
    logPhase(outcome, error);
    if (outcome === 'FAILED' || outcome === 'RETRY') trace.getActiveSpan()?.setStatus({ code: SpanStatusCode.ERROR, message: error });
    log().info({ taskType: task.type, outcome, attempt, durationMs: Math.round(performance.now() - started), ...(error ? { error } : {}) }, 'task');
  };

  const ctx: TaskContext = {
    task,
    em: systemFork(orm),
    signal: abort.signal,
    attempt,
    dataMoverId,
    phase: (name, bytesTotal) => {
      logPhase('done');
      phase = { name, started: performance.now(), span: startSpan(`task.phase ${name}`) };
      return then(() => reporter.setPhase(name, bytesTotal)) as Promise<void>;
    },
    progress: ({ bytesDone, bytesTotal }) => void then(() => reporter.progress(bytesDone, bytesTotal)).catch(() => {}),
  };

  try {
    const result = await executor(ctx);
    if (result?.backupId) await em.nativeUpdate(Task, { id: taskId }, { backup: result.backupId });
    logEnd('SUCCEEDED');
    await recordOutcome('SUCCEEDED');
    await then(() => reporter.finish('SUCCEEDED', undefined, { complete: true }));
    return { outcome: 'SUCCEEDED' };
  } catch (error) {
    if (cancelled || error instanceof TaskCancelled) {
      logEnd('CANCELLED');
      await recordOutcome('CANCELLED');
      await then(() => reporter.finish('CANCELLED'));
      return { outcome: 'CANCELLED' };
    }
    if (shutdown?.aborted) {
      await then(() => reporter.requeue(HANDED_BACK_NOTE));
      logEnd('HANDED_BACK');
      return { outcome: 'HANDED_BACK', error };
    }
    const message = error instanceof Error ? error.message : String(error);
    if (attempt < maxAttempts) {
      await then(() => reporter.requeue(message));
      logEnd('RETRY', message);
      return { outcome: 'RETRY', error };
    }
    logEnd('FAILED', message);
    await recordOutcome('FAILED', message);
    await then(() => reporter.finish('FAILED', message));
    return { outcome: 'FAILED', error };
  } finally {
    clearInterval(watch);
    shutdown?.removeEventListener('abort', onShutdown);
  }
}
