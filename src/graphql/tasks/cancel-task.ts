// cancelTask: a queued task is cancelled at once, a running one is asked to stop.
import { Task } from '../../db/entities/index.ts';
import { cancelTask } from '../../engine/tasks/tasks.ts';
import { builder } from '../builder.ts';
import { TaskRef } from '../refs.ts';
import { projectScope } from './loaders.ts';
import { actorOf, notFound, runTaskMutation, taskWriters, TaskPayloadRef } from './payload.ts';

const CancelTaskInput = builder.inputType('CancelTaskInput', {
  fields: (t) => ({ taskId: t.globalID({ required: true, for: TaskRef }) }),
});

builder.mutationField('cancelTask', (t) =>
  t.field({
    type: TaskPayloadRef,
    authScopes: { role: taskWriters },
    args: { input: t.arg({ type: CancelTaskInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      runTaskMutation(ctx, 'cancelTask', {}, async (em) => {
        // Lock the row: a data mover may be changing its state right now.
        const task = await em.findOne(Task, { id: input.taskId.id, ...projectScope(ctx, 'Task') }, { lockMode: 4 /* PESSIMISTIC_WRITE */ });
        if (!task) throw notFound('taskId');
        return cancelTask(em, task, actorOf(ctx));
      }),
  }),
);
