// inventorySync (action inventory:sync: ADMIN, OPERATOR): an INVENTORY_SYNC task for one cloud.
import { Cloud } from '../../db/entities/index.ts';
import { createTask } from '../../engine/tasks/tasks.ts';
import { builder } from '../builder.ts';
import { scopeWhere } from './loaders.ts';
import { actorOf, idOf, notFound, runTaskMutation, TaskPayloadRef } from './payload.ts';

const InventorySyncInput = builder.inputType('InventorySyncInput', {
  fields: (t) => ({ cloudId: t.id({ required: true }), idempotencyKey: t.string() }),
});

builder.mutationField('inventorySync', (t) =>
  t.field({
    type: TaskPayloadRef,
    description: "Reads the cloud's projects, instances, volumes and catalog again",
    authScopes: { can: 'inventory:sync' },
    args: { input: t.arg({ type: InventorySyncInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      runTaskMutation(ctx, 'inventorySync', input, async (em) => {
        const id = idOf(input.cloudId, 'Cloud', 'cloudId');
        const cloud = await em.findOne(Cloud, { $and: [{ id }, scopeWhere(ctx, 'Cloud')] });
        if (!cloud) throw notFound('cloudId');
        return createTask(em, { type: 'INVENTORY_SYNC', cloud, priority: 70, params: {} }, actorOf(ctx));
      }),
  }),
);
