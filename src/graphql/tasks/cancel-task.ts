// cancelTask: a queued task is cancelled at once, a running one is asked to stop.
import { can } from '../../auth/policy.ts';
import { LockMode } from '@mikro-orm/core';
import { Task } from '../../db/entities/index.ts';
import { cancelTask } from '../../engine/tasks/tasks.ts';
import { builder } from '../builder.ts';
import { scopeWhere } from './loaders.ts';
import { actorOf, idOf, notFound, runTaskMutation, TaskPayloadRef } from './payload.ts';

const CancelTaskInput = builder.inputType('CancelTaskInput', {
  fields: (t) => ({ taskId: t.id({ required: true }) }),
});

builder.mutationField('cancelTask', (t) =>
  t.field({
    type: TaskPayloadRef,
    authScopes: { can: 'task:cancel' },
    args: { input: t.arg({ type: CancelTaskInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      runTaskMutation(ctx, 'cancelTask', {}, async (em) => {
        // Lock the row: a data mover may be changing its state right now.
        const id = idOf(input.taskId, 'Task', 'taskId');
        const task = await em.findOne(Task, { $and: [{ id }, scopeWhere(ctx, 'Task')] }, { lockMode: LockMode.PESSIMISTIC_WRITE });
        if (!task || !can(ctx.viewer, 'task:cancel', task.project?.id ?? null)) throw notFound('taskId');
        return cancelTask(em, task, actorOf(ctx));
      }),
  }),
);
