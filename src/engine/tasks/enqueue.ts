// Putting a task on the durable queue, in the creating transaction (see src/engine/queue.ts):
// the job exists if and only if the task row does, routed to the data movers that may run it.
// A worker re-reads the Task row when it picks the job: a task cancelled while queued is skipped.
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Task } from '../../db/entities/index.ts';
import { nodeConfigurationFor } from '../eligibility.ts';
import { addTaskJob, removeTaskJob } from '../queue.ts';

/** `nodeConfigurationId`: the one serving the task, when the caller already looked it up. */
export async function enqueueTask(em: EntityManager, task: Task, nodeConfigurationId?: string | null): Promise<void> {
  await addTaskJob(em, task, nodeConfigurationId === undefined ? await nodeConfigurationFor(em, task) : nodeConfigurationId);
}

export async function dequeueTask(em: EntityManager, task: Task): Promise<void> {
  await removeTaskJob(em, task.id);
}
