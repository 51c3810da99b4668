// Waiting for a task queued in the test database to end (SUCCEEDED, FAILED or CANCELLED).
import { Task } from '../../src/db/entities/index.ts';
import { systemFork, type Orm } from '../../src/db/orm.ts';

/** The task once it ended, or as it is after `ms`. */
export async function taskEnded(orm: Orm, taskId: string, ms = 30_000): Promise<Task> {
  const end = Date.now() + ms;
  for (;;) {
    const task = await systemFork(orm).findOneOrFail(Task, taskId, { filters: false });
    if (['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(task.state) || Date.now() > end) return task;
    await new Promise((r) => setTimeout(r, 100));
  }
}
