// Runs one task on a data mover: claims it, walks it through its phases, watches for
// cancellation, and records the outcome. What a task *does* is its executor's business
// (a backup strategy, a restore, an inventory sync…); this file is the life cycle around it.
import type { EntityManager } from '@mikro-orm/postgresql';
import { FinalTaskStates, Task, type TaskType } from '../db/entities/index.ts';
import { systemFork, type Orm } from '../db/orm.ts';

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
  phase(name: string): Promise<void>;
  progress(p: TaskProgress): void;
};

export type Executor = (ctx: TaskContext) => Promise<{ backupId?: string } | void>;
export type Executors = Partial<Record<TaskType, Executor>>;

export type EngineHooks = {
  /** A task changed (state, phase or progress): tell the subscribers. */
  publish(task: Task): void | Promise<void>;
};

export class TaskCancelled extends Error {
  constructor() {
    super('cancelled');
  }
}

const CANCEL_POLL_MS = 500;
const PROGRESS_EVERY_MS = 250;

export type RunOutcome = 'SUCCEEDED' | 'FAILED' | 'CANCELLED' | 'RETRY' | 'SKIPPED';

/**
 * Run task `taskId` as attempt `attempt` of `maxAttempts`. Returns how it ended; 'RETRY' means
 * the queue should run it again later (the caller throws so graphile-worker backs off).
 */
export async function runTask(
  orm: Orm,
  executors: Executors,
  hooks: EngineHooks,
  taskId: string,
  attempt: number,
  maxAttempts: number,
  dataMoverId: string,
  shutdown?: AbortSignal,
): Promise<{ outcome: RunOutcome; error?: unknown }> {
  const em = systemFork(orm);
  const task = await em.findOne(Task, taskId);
  if (!task || FinalTaskStates.includes(task.state)) return { outcome: 'SKIPPED' };
  const now = new Date();
  if (task.cancelRequested) {
    await finish(em, hooks, task, 'CANCELLED');
    return { outcome: 'CANCELLED' };
  }
  if (task.deadline && now > task.deadline && !task.startedAt) {
    task.error = `could not start inside its window (ended ${task.deadline.toISOString()})`;
    await finish(em, hooks, task, 'FAILED');
    return { outcome: 'FAILED' };
  }
  const executor = executors[task.type];
  if (!executor) {
    task.error = `no executor for ${task.type} tasks on this data mover`;
    await finish(em, hooks, task, 'FAILED');
    return { outcome: 'FAILED' };
  }

  // Claim: only a QUEUED (or orphaned RUNNING) task that nobody cancelled meanwhile.
  const claimed = await em.execute(
    `update task set state = 'RUNNING', attempt = ?, data_mover_id = ?, started_at = coalesce(started_at, now()), updated_at = now()
      where id = ? and state in ('QUEUED', 'RUNNING') and not cancel_requested returning id`,
    [attempt, dataMoverId, taskId],
  );
  if (claimed.length === 0) return { outcome: 'SKIPPED' };
  await em.refresh(task);
  const phaseSeconds: Record<string, number> = { ...task.phaseSeconds };
  phaseSeconds.queued ??= (Date.now() - task.createdAt.getTime()) / 1000;
  let phase = { name: 'start', since: Date.now() };
  const closePhase = () => {
    phaseSeconds[phase.name] = (phaseSeconds[phase.name] ?? 0) + (Date.now() - phase.since) / 1000;
  };
  task.phaseSeconds = phaseSeconds;
  await em.flush();
  await hooks.publish(task);

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

  // Writes of this task's row go one after another: a progress write still in flight must not
  // race the final state.
  let writes: Promise<unknown> = Promise.resolve();
  const save = () => (writes = writes.then(() => em.flush()).then(() => hooks.publish(task)));
  let lastProgressAt = 0;
  let lastBytes = { at: Date.now(), done: 0n };
  const ctx: TaskContext = {
    task,
    em: systemFork(orm),
    signal: abort.signal,
    attempt,
    dataMoverId,
    async phase(name) {
      closePhase();
      phase = { name, since: Date.now() };
      task.phase = name;
      task.phaseSeconds = { ...phaseSeconds };
      await save();
    },
    progress({ bytesDone, bytesTotal }) {
      task.bytesDone = bytesDone;
      task.bytesTotal = bytesTotal;
      const t = Date.now();
      if (t - lastProgressAt < PROGRESS_EVERY_MS && bytesDone < bytesTotal) return;
      const seconds = (t - lastBytes.at) / 1000;
      if (seconds > 0) task.rate = Number(bytesDone - lastBytes.done) / seconds;
      lastBytes = { at: t, done: bytesDone };
      lastProgressAt = t;
      save().catch(() => {});
    },
  };

  try {
    const result = await executor(ctx);
    await writes.catch(() => {});
    closePhase();
    task.phaseSeconds = phaseSeconds;
    task.phase = undefined;
    if (result?.backupId) task.backup = em.getReference('Backup', result.backupId) as never;
    task.error = undefined;
    await finish(em, hooks, task, 'SUCCEEDED');
    return { outcome: 'SUCCEEDED' };
  } catch (error) {
    await writes.catch(() => {});
    closePhase();
    task.phaseSeconds = phaseSeconds;
    if (cancelled || error instanceof TaskCancelled) {
      await finish(em, hooks, task, 'CANCELLED');
      return { outcome: 'CANCELLED' };
    }
    task.error = error instanceof Error ? error.message : String(error);
    if (attempt < maxAttempts) {
      task.state = 'QUEUED';
      task.phase = undefined;
      await em.flush();
      await hooks.publish(task);
      return { outcome: 'RETRY', error };
    }
    await finish(em, hooks, task, 'FAILED');
    return { outcome: 'FAILED', error };
  } finally {
    clearInterval(watch);
    shutdown?.removeEventListener('abort', onShutdown);
  }
}

async function finish(em: EntityManager, hooks: EngineHooks, task: Task, state: 'SUCCEEDED' | 'FAILED' | 'CANCELLED') {
  task.state = state;
  task.finishedAt = new Date();
  if (state === 'SUCCEEDED' && task.bytesTotal > 0n) task.bytesDone = task.bytesTotal;
  await em.flush();
  await hooks.publish(task);
}
