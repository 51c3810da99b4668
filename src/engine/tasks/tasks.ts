// Creating and cancelling tasks from the API, in the caller's transaction: quota admission
// (hard limits refuse, soft limits alert), the Task row (and a Restore row for restores), an
// audit entry, the queue job, and events that leave on commit. Authorisation and visibility
// are the caller's job (the GraphQL mutations check them before calling here).
import type { EntityManager } from '@mikro-orm/postgresql';
import {
  AuditEntry, FinalTaskStates, Restore, Task, type AvailabilityZone, type Backup, type Project, type RestoreMappings, type TaskState,
} from '../../db/entities/index.ts';
import { Channels, taskEvent, type QuotaAlertEvent } from '../../events/channels.ts';
import { notify } from '../../events/pubsub.ts';
import { nodeConfigurationFor } from '../eligibility.ts';
import { dequeueTask, enqueueTask } from '../queue.ts';
import { checkQuotas, describeFinding, type QuotaFinding } from '../quotas/quota-check.ts';

/** Who asks (for the audit log); null for the scheduler and other system jobs. */
export type Actor = { accountId: string; name: string } | null;

export class TaskError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
  static alreadyFinished(state: TaskState) {
    return new TaskError('TASK_FINISHED', `the task has already finished (${state})`);
  }
  static quotaExceeded(refusals: QuotaFinding[]) {
    return new TaskError('QUOTA_EXCEEDED', refusals.map(describeFinding).join('; '));
  }
}

type NewTask = Pick<Task, 'type'> &
  Partial<Pick<Task, 'cloud' | 'project' | 'instance' | 'policy' | 'destination' | 'backup' | 'params' | 'priority' | 'maxAttempts' | 'createdBy'>> & {
    /** What the task adds to BYTES quotas (front-end size read or written). */
    quotaBytes?: bigint;
  };

export type NewRestore = { backup: Backup; project: Project; zone?: AvailabilityZone; name: string; mappings: RestoreMappings };

function audit(em: EntityManager, actor: Actor, action: string, task: Task, details: Record<string, unknown> = {}) {
  em.create(AuditEntry, {
    accountId: actor?.accountId,
    accountName: actor?.name ?? 'system',
    action,
    objectType: 'Task',
    objectId: task.id,
    projectId: task.project?.id,
    details: { type: task.type, ...details },
  });
}

/** Creates a QUEUED task (and its Restore row); `em` must be in a transaction (events leave on commit). */
export async function createTask(em: EntityManager, input: NewTask, actor: Actor, restore?: NewRestore): Promise<Task> {
  const { quotaBytes = 0n, ...fields } = input;
  const params = { ...(fields.params ?? {}), quotaBytes: quotaBytes.toString() };
  // Quotas govern backups and restores of a project; the check locks, so the next creator counts this task.
  const governed = (fields.type === 'BACKUP' || fields.type === 'RESTORE') && fields.project;
  const decision = governed
    ? await checkQuotas(em, { action: fields.type as 'BACKUP' | 'RESTORE', projectId: fields.project!.id, instanceId: fields.instance?.id, bytes: quotaBytes })
    : null;
  if (decision && !decision.admitted) throw TaskError.quotaExceeded(decision.refusals);

  const task = em.create(Task, { ...fields, params });
  if (restore) em.create(Restore, { ...restore, task, state: 'QUEUED' });
  audit(em, actor, `task.${fields.type.toLowerCase()}.start`, task, { params });
  for (const alert of decision?.alerts ?? []) {
    audit(em, actor, 'quota.soft_limit', task, { quota: alert.quota.name, message: describeFinding(alert) });
  }
  await em.flush();
  await enqueueTask(em, task, await nodeConfigurationFor(em, task));
  await notify(em, Channels.task, taskEvent(task, 'CREATED'));
  for (const alert of decision?.alerts ?? []) {
    const event: QuotaAlertEvent = {
      quotaId: alert.quota.id,
      projectId: fields.project!.id,
      instanceId: fields.instance?.id ?? null,
      used: (alert.used + alert.requested).toString(),
      softLimit: alert.limit.toString(),
      at: new Date().toISOString(),
    };
    await notify(em, Channels.quotaAlert, event);
  }
  return task;
}

/**
 * A queued task is cancelled at once and its job removed; a running one is asked to stop
 * (`cancelRequested`, which its data mover polls). Refused for a finished task.
 */
export async function cancelTask(em: EntityManager, task: Task, actor: Actor): Promise<Task> {
  if (FinalTaskStates.includes(task.state)) throw TaskError.alreadyFinished(task.state);
  task.cancelRequested = true;
  if (task.state === 'QUEUED') {
    task.state = 'CANCELLED';
    task.finishedAt = new Date();
    const restore = await em.findOne(Restore, { task: task.id });
    if (restore) restore.state = 'CANCELLED';
    await dequeueTask(em, task.id);
  }
  audit(em, actor, 'task.cancel', task, { state: task.state });
  await em.flush();
  await notify(em, Channels.task, taskEvent(task, 'STATE'));
  return task;
}
