// THE QUEUE SEAM. Today this only announces a queued task on `sb_task_queued` (inside the
// creating transaction, so it is heard only on commit); nothing consumes it yet and nothing
// runs tasks. The task-engine issue replaces the body with a graphile-worker `add_job` in the
// same transaction (durable, retried), keeping this signature. A worker must re-read the Task
// row when it picks a job: a task cancelled while queued is already CANCELLED and must be skipped.
import { Channels } from '../../events/channels.ts';
import { notify, type SqlExecutor } from '../../events/pubsub.ts';
import type { Task } from '../../db/entities/index.ts';

export type QueuedTask = { taskId: string; type: Task['type']; priority: number; notBefore: string | null };

export async function enqueueTask(tx: SqlExecutor, task: Task): Promise<void> {
  const job: QueuedTask = { taskId: task.id, type: task.type, priority: task.priority, notBefore: task.notBefore?.toISOString() ?? null };
  await notify(tx, Channels.taskQueued, job);
}
