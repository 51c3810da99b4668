// startBackup: a backup task for one instance, with its policy (given, or assigned) and
// destination (the policy's, or the default one) — both must be visible to the instance's project.
import type { EntityManager } from '@mikro-orm/postgresql';
import { BackupDestination, Instance, Policy, type Visibility } from '../../db/entities/index.ts';
import { createTask } from '../../engine/tasks/tasks.ts';
import { builder } from '../builder.ts';
import type { Context } from '../context.ts';
import { InstanceRef, PolicyRef } from '../refs.ts';
import { projectScope } from './loaders.ts';
import { actorOf, notFound, refuse, runTaskMutation, taskWriters, TaskPayloadRef } from './payload.ts';

const StartBackupType = builder.enumType('StartBackupType', {
  values: { FULL: {}, INCREMENTAL: {}, AUTO: { description: "Incremental unless the policy's fullEvery or a missing base calls for a full one" } },
});

const StartBackupInput = builder.inputType('StartBackupInput', {
  fields: (t) => ({
    instanceId: t.globalID({ required: true, for: InstanceRef }),
    policyId: t.globalID({ for: PolicyRef, description: "Defaults to the instance's assigned policy" }),
    type: t.field({ type: StartBackupType, defaultValue: 'AUTO' }),
    idempotencyKey: t.string(),
  }),
});

type Visible = { visibility: Visibility; projects: { getItems(): { id: string }[] } };
export const visibleTo = (o: Visible, projectId: string) => o.visibility === 'ALL_PROJECTS' || o.projects.getItems().some((p) => p.id === projectId);

async function start(ctx: Context, em: EntityManager, input: { instanceId: { id: string }; policyId?: { id: string } | null; type?: string | null }) {
  const instance = await em.findOne(Instance, { id: input.instanceId.id, ...projectScope(ctx, 'Instance') });
  if (!instance) throw notFound('instanceId');
  if (!instance.present) throw refuse('INSTANCE_GONE', 'the instance no longer exists in the cloud', ['instanceId']);
  const projectId = instance.project.id;

  const policyId = input.policyId?.id ?? instance.policy?.id;
  const policy = policyId ? await em.findOne(Policy, { id: policyId }, { populate: ['projects'] }) : null;
  if (policyId && (!policy || !visibleTo(policy, projectId))) {
    throw refuse('POLICY_NOT_AVAILABLE', "the policy is not available to the instance's project", ['policyId']);
  }

  const destination = policy?.destination
    ? await em.findOne(BackupDestination, { id: policy.destination.id }, { populate: ['projects'] })
    : await em.findOne(BackupDestination, { isDefault: true }, { populate: ['projects'] });
  if (policy?.destination && !destination) {
    throw refuse('DESTINATION_NOT_AVAILABLE', "the policy's backup destination is not available to the instance's project", ['policyId']);
  }
  if (!destination) throw refuse('NO_DESTINATION', 'neither the policy nor a default gives a backup destination', ['policyId']);
  if (!visibleTo(destination, projectId)) {
    throw refuse('DESTINATION_NOT_AVAILABLE', "the backup destination is not available to the instance's project", ['policyId']);
  }

  return createTask(
    em,
    {
      type: 'BACKUP',
      cloud: instance.cloud,
      project: instance.project,
      instance,
      policy: policy ?? undefined,
      destination,
      priority: policy?.priority ?? 50,
      params: { backupType: input.type ?? 'AUTO' },
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
