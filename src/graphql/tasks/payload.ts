// `TaskPayload { task, userErrors }` and the one way every trigger mutation runs: in a
// transaction, idempotent when a key is given, business refusals turned into userErrors.
import type { EntityManager } from '@mikro-orm/postgresql';
import { rolesAllowed } from '../../auth/policy.ts';
import { Task, type Role } from '../../db/entities/index.ts';
import { TaskError } from '../../engine/tasks/tasks.ts';
import { builder } from '../builder.ts';
import type { Context } from '../context.ts';
import { idempotent } from '../idempotency.ts';
import { TaskRef } from '../refs.ts';
import { UserErrorException, UserErrorRef, type UserError } from '../user-errors.ts';
import { parseGlobalId } from '../node.ts';
import { loadById } from './loaders.ts';

/** Who may trigger backups, restores and cancels (a TENANT within its projects; src/auth/policy.ts). */
export const taskWriters: Role[] = rolesAllowed('task:start');

export type TaskPayloadShape = { task: Task | null; userErrors: UserError[] };

export const TaskPayloadRef = builder.objectRef<TaskPayloadShape>('TaskPayload').implement({
  fields: (t) => ({
    task: t.field({ type: TaskRef, nullable: true, resolve: (p) => p.task }),
    userErrors: t.field({ type: [UserErrorRef], resolve: (p) => p.userErrors }),
  }),
});

export const refuse = (code: string, message: string, field: string[]) => UserErrorException.of(code, message, ['input', ...field]);
export const notFound = (field: string) => refuse('NOT_FOUND', `no such object (or not yours): ${field}`, [field]);

/** The database ID behind a global ID input of type `typename`; NOT_FOUND when it is not one. */
export function idOf(globalId: string | number, typename: string, field: string): string {
  const parsed = parseGlobalId(String(globalId), typename);
  if (!parsed) throw notFound(field);
  return parsed.id;
}

export function actorOf(ctx: Context) {
  return ctx.viewer ? { accountId: ctx.viewer.accountId, name: ctx.viewer.name } : null;
}

/**
 * Runs `work` in one transaction (on a fork of the request's scoped EntityManager). With an
 * idempotency key, a repeated request answers with the first task and runs nothing.
 */
export async function runTaskMutation(
  ctx: Context,
  operation: string,
  input: Record<string, unknown> & { idempotencyKey?: string | null },
  work: (em: EntityManager) => Promise<Task>,
): Promise<TaskPayloadShape> {
  try {
    const { response } = await ctx.em.transactional((em) =>
      idempotent(em, { accountId: ctx.viewer!.accountId, key: input.idempotencyKey, operation, input }, async () => ({
        taskId: (await work(em)).id,
      })),
    );
    return { task: await loadById(ctx, Task, response.taskId), userErrors: [] };
  } catch (e) {
    if (e instanceof UserErrorException) return { task: null, userErrors: e.errors };
    if (e instanceof TaskError) return { task: null, userErrors: [{ code: e.code, message: e.message, field: ['input'] }] };
    throw e;
  }
}
