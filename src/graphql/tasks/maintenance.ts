// Maintenance triggers: apply a policy's retention now (pruneNow), delete one backup
// (backupDelete: a PRUNE task of that backup only) and verify a destination (verifyDestination).
// pruneNow and verifyDestination act on whole policies and destinations (action maintenance:run:
// ADMIN, OPERATOR); backupDelete is backup:delete, a TENANT within its own projects.
import { can } from '../../auth/policy.ts';
import { Backup, BackupDestination, Policy } from '../../db/entities/index.ts';
import { hasRetentionRule } from '../../engine/retention.ts';
import { createTask } from '../../engine/tasks/tasks.ts';
import { builder } from '../builder.ts';
import { scopeWhere } from './loaders.ts';
import { actorOf, idOf, notFound, refuse, runTaskMutation, TaskPayloadRef } from './payload.ts';

const PruneNowInput = builder.inputType('PruneNowInput', {
  fields: (t) => ({
    policyId: t.id({ required: true }),
    destinationId: t.id({ description: "Only the policy's backups in this destination (default: in every destination)" }),
    idempotencyKey: t.string(),
  }),
});

builder.mutationField('pruneNow', (t) =>
  t.field({
    type: TaskPayloadRef,
    description: "Applies the policy's retention now: a PRUNE task that deletes the backups it no longer keeps and frees their space",
    authScopes: { can: 'maintenance:run' },
    args: { input: t.arg({ type: PruneNowInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      runTaskMutation(ctx, 'pruneNow', input, async (em) => {
        const policy = await em.findOne(Policy, { $and: [{ id: idOf(input.policyId, 'Policy', 'policyId') }, scopeWhere(ctx, 'Policy')] });
        if (!policy) throw notFound('policyId');
        if (!hasRetentionRule(policy.retention)) throw refuse('NO_RETENTION', 'the policy has no retention rule: it keeps every backup', ['policyId']);
        const destination = input.destinationId != null
          ? await em.findOne(BackupDestination, { $and: [{ id: idOf(input.destinationId, 'BackupDestination', 'destinationId') }, scopeWhere(ctx, 'BackupDestination')] })
          : null;
        if (input.destinationId != null && !destination) throw notFound('destinationId');
        return createTask(em, { type: 'PRUNE', policy, destination: destination ?? undefined, priority: 40, maxAttempts: policy.retries + 1, params: {} }, actorOf(ctx));
      }),
  }),
);

const BackupDeleteInput = builder.inputType('BackupDeleteInput', {
  fields: (t) => ({ backupId: t.id({ required: true }), idempotencyKey: t.string() }),
});

builder.mutationField('backupDelete', (t) =>
  t.field({
    type: TaskPayloadRef,
    description: 'Deletes one backup: a PRUNE task removes it from its destination (it is gone from listings and billing once the task runs)',
    authScopes: { can: 'backup:delete' },
    args: { input: t.arg({ type: BackupDeleteInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      runTaskMutation(ctx, 'backupDelete', input, async (em) => {
        const backup = await em.findOne(Backup, { $and: [{ id: idOf(input.backupId, 'Backup', 'backupId') }, scopeWhere(ctx, 'Backup')] });
        // A project not the caller's answers as missing (src/auth/policy.ts decides).
        if (!backup || !can(ctx.viewer, 'backup:delete', backup.project.id)) throw notFound('backupId');
        if (backup.state !== 'AVAILABLE') throw refuse('BACKUP_NOT_AVAILABLE', `only an available backup can be deleted (this one is ${backup.state})`, ['backupId']);
        return createTask(
          em,
          { type: 'PRUNE', cloud: backup.cloud, project: backup.project, instance: backup.instance, destination: backup.destination, backup, priority: 40, params: { backupIds: [backup.id] } },
          actorOf(ctx),
        );
      }),
  }),
);

const VerifyDestinationInput = builder.inputType('VerifyDestinationInput', {
  fields: (t) => ({
    destinationId: t.id({ required: true }),
    readData: t.boolean({ defaultValue: false, description: 'Also read, decrypt and re-hash every stored chunk (slow: reads the whole destination)' }),
    idempotencyKey: t.string(),
  }),
});

builder.mutationField('verifyDestination', (t) =>
  t.field({
    type: TaskPayloadRef,
    description: "Checks a destination's repository; the task's result summarises what was found, and damage fails the task",
    authScopes: { can: 'maintenance:run' },
    args: { input: t.arg({ type: VerifyDestinationInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      runTaskMutation(ctx, 'verifyDestination', input, async (em) => {
        const destination = await em.findOne(BackupDestination, { $and: [{ id: idOf(input.destinationId, 'BackupDestination', 'destinationId') }, scopeWhere(ctx, 'BackupDestination')] });
        if (!destination) throw notFound('destinationId');
        // One attempt: a retry would find the same damage.
        return createTask(em, { type: 'VERIFY', destination, priority: 30, maxAttempts: 1, params: { readData: input.readData === true } }, actorOf(ctx));
      }),
  }),
);
