// Creating and cancelling tasks, in the caller's transaction: the Task row (and a Restore row
// for restores), an audit entry, the queue seam, and a task event that leaves on commit.
// Authorisation is the caller's job (the GraphQL mutations check scope before calling here).
import type { EntityManager } from '@mikro-orm/postgresql';
import { AuditEntry, AuditEvent, FinalTaskStates, Restore, Task, type AvailabilityZone, type Backup, type Project, type RestoreMappings, type TaskState } from '../../db/entities/index.ts';
import { Channels, taskEvent } from '../../events/channels.ts';
import { notify } from '../../events/pubsub.ts';
import { taskOutcomeEvent } from '../audit-trail.ts';
import { tasksFinished } from '../../observability/metrics.ts';
import { currentTraceparent } from '../../observability/tracing.ts';
import { dequeueTask, enqueueTask } from './enqueue.ts';
import { mayWrite, nodeConfigurationFor } from '../eligibility.ts';
import { admit, QuotaExceeded, quotaBytes } from '../quotas/admission.ts';
import { currentRequestId, newRequestId } from '../../observability/request-context.ts';

/** Who asks (for the audit log); null for the scheduler and other system jobs. */
export type Actor = { accountId: string; name: string } | null;

export class TaskError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
  static destinationNotWritable() {
    return new TaskError('DESTINATION_NOT_WRITABLE', "the node configuration serving this instance may not write the backup destination");
  }
  static alreadyFinished(state: TaskState) {
    return new TaskError('TASK_FINISHED', `the task has already finished (${state})`);
  }
}

type NewTask = Pick<Task, 'type'> &
  Partial<Pick<Task, 'cloud' | 'project' | 'instance' | 'policy' | 'destination' | 'backup' | 'params' | 'priority' | 'createdBy' | 'maxAttempts' | 'notBefore' | 'deadline' | 'scheduleKey'>> & {
    /** What the task adds to BYTES quotas; by default the instance's (backup) or backup's (restore) front-end size. */
    quotaBytes?: bigint;
  };

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

export type NewRestore = { backup: Backup; project: Project; zone?: AvailabilityZone; name: string; mappings: RestoreMappings; verify?: boolean };

/** Creates a QUEUED task (and its Restore row); `em` must be in a transaction (events leave on commit). */
export async function createTask(em: EntityManager, { quotaBytes: givenBytes, ...input }: NewTask, actor: Actor, restore?: NewRestore): Promise<Task> {
  if ((input.type === 'BACKUP' || input.type === 'RESTORE') && input.project) {
    const ids = { instanceId: input.instance?.id, backupId: input.backup?.id };
    const bytes = givenBytes ?? (await quotaBytes(em, input.type, ids));
    try {
      await admit(em, { action: input.type, projectId: input.project.id, instanceId: ids.instanceId, bytes }, actor);
    } catch (e) {
      if (e instanceof QuotaExceeded) throw new TaskError(e.code, e.message);
      throw e;
    }
    input = { ...input, params: { ...input.params, quotaBytes: bytes.toString() } };
  }
  // The creating request's ID follows the task to its data mover; the scheduler's tasks get their own.
  const task = em.create(Task, { ...input, requestId: currentRequestId() ?? newRequestId(), traceparent: currentTraceparent() });
  if (restore) em.create(Restore, { ...restore, task, state: 'QUEUED' });
  audit(em, actor, `task.${input.type.toLowerCase()}.start`, task, { params: input.params ?? {} });
  await em.flush();
  // The data movers that will run it must be allowed to write its destination.
  const nodeConfigurationId = await nodeConfigurationFor(em, task);
  if (task.destination && !(await mayWrite(em, nodeConfigurationId, task.destination.id))) {
    throw TaskError.destinationNotWritable();
  }
  await enqueueTask(em, task, nodeConfigurationId);
  await notify(em, Channels.task, taskEvent(task, 'CREATED'));
  return task;
}

/**
 * A queued task is cancelled at once; a running one is asked to stop (`cancelRequested`) and
 * its data mover ends it. Refused for a finished task.
 */
export async function cancelTask(em: EntityManager, task: Task, actor: Actor): Promise<Task> {
  if (FinalTaskStates.includes(task.state)) throw TaskError.alreadyFinished(task.state);
  task.cancelRequested = true;
  if (task.state === 'QUEUED') {
    task.state = 'CANCELLED';
    task.finishedAt = new Date();
    const restore = await em.findOne(Restore, { task: task.id });
    if (restore) restore.state = 'CANCELLED';
    // A queued task never reaches a data mover: its outcome is recorded here.
    em.create(AuditEvent, taskOutcomeEvent(task, 'CANCELLED'));
    await dequeueTask(em, task);
  }
  audit(em, actor, 'task.cancel', task, { state: task.state });
  await em.flush();
  if (task.state === 'CANCELLED') tasksFinished.inc({ type: task.type, state: 'CANCELLED' });
  await notify(em, Channels.task, taskEvent(task, 'STATE'));
  return task;
}
