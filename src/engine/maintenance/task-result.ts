// A maintenance task's summary (prune, verify), kept on its Task row for the portal and the API.
import type { EntityManager } from '@mikro-orm/postgresql';
import { Task } from '../../db/entities/index.ts';

export async function saveTaskResult(em: EntityManager, taskId: string, result: object): Promise<void> {
  await em.nativeUpdate(Task, { id: taskId }, { result: result as Record<string, unknown> });
}
