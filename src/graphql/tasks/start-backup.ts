// startBackup: a backup task for one instance, with its policy (given, or assigned) and
// destination (the policy's, or the default one) — both must be visible to the instance's project.
import { can } from '../../auth/policy.ts';
import type { EntityManager } from '@mikro-orm/postgresql';
import { BackupDestination, Instance, Policy, type Visibility } from '../../db/entities/index.ts';
import { createTask } from '../../engine/tasks/tasks.ts';
import { builder } from '../builder.ts';
import type { Context } from '../context.ts';
import { scopeWhere } from './loaders.ts';
import { actorOf, idOf, notFound, refuse, runTaskMutation, taskWriters, TaskPayloadRef } from './payload.ts';

const StartBackupType = builder.enumType('StartBackupType', {
  values: { FULL: {}, INCREMENTAL: {}, AUTO: { description: "Incremental unless the policy's fullEvery or a missing base calls for a full one" } },
});

const StartBackupInput = builder.inputType('StartBackupInput', {
  fields: (t) => ({
    instanceId: t.id({ required: true }),
    policyId: t.id({ description: "Defaults to the instance's assigned policy" }),
    type: t.field({ type: StartBackupType, defaultValue: 'AUTO' }),
    idempotencyKey: t.string(),
  }),
});

type Visible = { visibility: Visibility; projects: { getItems(): { id: string }[] } };
export const visibleTo = (o: Visible, projectId: string) => o.visibility === 'ALL_PROJECTS' || o.projects.getItems().some((p) => p.id === projectId);

type Input = typeof StartBackupInput.$inferInput;

async function start(ctx: Context, em: EntityManager, input: Input) {
  const instanceId = idOf(input.instanceId, 'Instance', 'instanceId');
  const inputPolicyId = input.policyId != null ? idOf(input.policyId, 'Policy', 'policyId') : null;
  const instance = await em.findOne(Instance, { $and: [{ id: instanceId }, scopeWhere(ctx, 'Instance')] });
  if (!instance) throw notFound('instanceId');
  if (!instance.present) throw refuse('INSTANCE_GONE', 'the instance no longer exists in the cloud', ['instanceId']);
  const projectId = instance.project.id;

  const policyId = inputPolicyId ?? instance.policy?.id;
  const policy = policyId ? await em.findOne(Policy, { $and: [{ id: policyId }, scopeWhere(ctx, 'Policy')] }, { populate: ['projects'] }) : null;
  if (policyId && (!policy || !visibleTo(policy, projectId))) {
    throw refuse('POLICY_NOT_AVAILABLE', "the policy is not available to the instance's project", ['policyId']);
  }

  const destination = policy?.destination
    ? await em.findOne(BackupDestination, { $and: [{ id: policy.destination.id }, scopeWhere(ctx, 'BackupDestination')] }, { populate: ['projects'] })
    : await em.findOne(BackupDestination, { $and: [{ isDefault: true }, scopeWhere(ctx, 'BackupDestination')] }, { populate: ['projects'] });
  if (policy?.destination && !destination) {
    throw refuse('DESTINATION_NOT_AVAILABLE', "the policy's backup destination is not available to the instance's project", ['policyId']);
  }
  if (!destination) throw refuse('NO_DESTINATION', 'neither the policy nor a default gives a backup destination', ['policyId']);
  if (!visibleTo(destination, projectId)) {
    throw refuse('DESTINATION_NOT_AVAILABLE', "the backup destination is not available to the instance's project", ['policyId']);
  }

  // The policy statements decide (src/auth/policy.ts); a project not the caller's answers as missing.
  if (!can(ctx.viewer, 'task:start', projectId)) throw notFound('instanceId');

  return createTask(
    em,
    {
      type: 'BACKUP',
      maxAttempts: policy ? policy.retries + 1 : undefined,
      cloud: instance.cloud,
      project: instance.project,
      instance,
      policy: policy ?? undefined,
      destination,
      priority: policy?.priority ?? 50,
      params: { type: input.type ?? 'AUTO' },
    },
    actorOf(ctx),
  );
}

builder.mutationField('startBackup', (t) =>
  t.field({
    type: TaskPayloadRef,
    description: 'Starts a backup of one instance; returns the QUEUED task at once',
    authScopes: { role: taskWriters },
    args: { input: t.arg({ type: StartBackupInput, required: true }) },
    resolve: (_root, { input }, ctx) => runTaskMutation(ctx, 'startBackup', input, (em) => start(ctx, em, input)),
  }),
);
