// Task, Backup, BackupDisk and Restore as GraphQL types, with enums and the subscription
// payloads (TaskProgress, QuotaAlert). References load through the scoped, batched loaders.
import * as E from '../../db/entities/index.ts';
import type { QuotaAlertEvent, TaskEvent } from '../../events/channels.ts';
import { GraphQLError } from 'graphql';
import { builder } from '../builder.ts';
import type { Context } from '../context.ts';
import {
  AvailabilityZoneRef, BackupDestinationRef, BackupDiskRef, BackupRef, CloudRef, DataMoverRef, InstanceRef, PolicyRef,
  ProjectRef, QuotaRef, RestoreRef, TaskRef,
} from '../refs.ts';
import { registerNodeType, scopedLoad, viaLoader } from '../node.ts';
import { loadBackupDisks, loadRestoreOfTask } from './loaders.ts';

for (const name of ['Task', 'Backup', 'BackupDisk', 'Restore']) registerNodeType(name);

export const TaskTypeEnum = builder.enumType('TaskType', { values: E.TaskTypes });
export const TaskStateEnum = builder.enumType('TaskState', { values: E.TaskStates });
export const BackupTypeEnum = builder.enumType('BackupType', { values: E.BackupTypes });
export const BackupStateEnum = builder.enumType('BackupState', { values: E.BackupStates });

/** Seconds left at the current rate, when it can be told. */
export function etaSeconds(bytesDone: bigint, bytesTotal: bigint, rate: number | null | undefined): number | null {
  if (!rate || rate <= 0 || bytesTotal <= bytesDone) return null;
  return Number(bytesTotal - bytesDone) / rate;
}

function progressOf(task: Pick<E.Task, 'state' | 'bytesDone' | 'bytesTotal'>): number {
  if (task.state === 'SUCCEEDED') return 1;
  if (task.bytesTotal <= 0n) return 0;
  return Math.min(1, Number(task.bytesDone) / Number(task.bytesTotal));
}

const TaskPhaseTimeRef = builder.objectRef<{ phase: string; seconds: number }>('TaskPhaseTime').implement({
  description: 'Seconds a task spent in one phase',
  fields: (t) => ({ phase: t.exposeString('phase'), seconds: t.exposeFloat('seconds') }),
});

builder.loadableNode(TaskRef, {
  description: 'A unit of work: backup, restore, inventory sync, prune or verify',
  id: { resolve: (task) => task.id },
  load: scopedLoad(E.Task, 'Task'),
  sort: (o) => o.id,
  fields: (t) => ({
    type: t.field({ type: TaskTypeEnum, resolve: (task) => task.type }),
    state: t.field({ type: TaskStateEnum, resolve: (task) => task.state }),
    phase: t.string({ nullable: true, resolve: (task) => task.phase ?? null }),
    progress: t.float({ description: 'Share of the work done, 0–1', resolve: progressOf }),
    bytesDone: t.field({ type: 'Bytes', resolve: (task) => task.bytesDone }),
    bytesTotal: t.field({ type: 'Bytes', resolve: (task) => task.bytesTotal }),
    rate: t.float({ nullable: true, description: 'Bytes per second, as last reported', resolve: (task) => task.rate ?? null }),
    eta: t.float({ nullable: true, description: 'Seconds to go at the current rate', resolve: (task) => etaSeconds(task.bytesDone, task.bytesTotal, task.rate) }),
    attempt: t.exposeInt('attempt'),
    cancelRequested: t.exposeBoolean('cancelRequested'),
    createdAt: t.field({ type: 'DateTime', resolve: (task) => task.createdAt }),
    startedAt: t.field({ type: 'DateTime', nullable: true, resolve: (task) => task.startedAt ?? null }),
    finishedAt: t.field({ type: 'DateTime', nullable: true, resolve: (task) => task.finishedAt ?? null }),
    error: t.string({ nullable: true, resolve: (task) => task.error ?? null }),
    result: t.field({
      type: 'JSON',
      nullable: true,
      description: 'What a PRUNE or VERIFY task did or found (backups deleted and bytes freed; verify counts and problems)',
      resolve: (task) => task.result ?? null,
    }),
    phaseSeconds: t.field({
      type: [TaskPhaseTimeRef],
      description: 'Time spent per phase',
      resolve: (task) => Object.entries(task.phaseSeconds ?? {}).map(([phase, seconds]) => ({ phase, seconds: Number(seconds) })),
    }),
    cloud: t.field({ type: CloudRef, nullable: true, resolve: (task) => viaLoader(task.cloud) }),
    project: t.field({ type: ProjectRef, nullable: true, resolve: (task) => viaLoader(task.project) }),
    instance: t.field({ type: InstanceRef, nullable: true, resolve: (task) => viaLoader(task.instance) }),
    policy: t.field({ type: PolicyRef, nullable: true, resolve: (task) => viaLoader(task.policy) }),
    destination: t.field({ type: BackupDestinationRef, nullable: true, resolve: (task) => viaLoader(task.destination) }),
    dataMover: t.field({ type: DataMoverRef, nullable: true, resolve: (task) => viaLoader(task.dataMover) }),
    backup: t.field({ type: BackupRef, nullable: true, description: 'The backup this task produced or restores from', resolve: (task) => viaLoader(task.backup) }),
    restore: t.field({ type: RestoreRef, nullable: true, description: 'For RESTORE tasks: what is restored where', resolve: (task, _a, ctx) => (task.type === 'RESTORE' ? loadRestoreOfTask(ctx, task.id) : null) }),
  }),
});

builder.loadableNode(BackupRef, {
  description: 'A complete point-in-time backup of one instance in a destination',
  id: { resolve: (b) => b.id },
  load: scopedLoad(E.Backup, 'Backup'),
  sort: (o) => o.id,
  fields: (t) => ({
    type: t.field({ type: BackupTypeEnum, resolve: (b) => b.type }),
    state: t.field({ type: BackupStateEnum, resolve: (b) => b.state }),
    createdAt: t.field({ type: 'DateTime', resolve: (b) => b.createdAt }),
    completedAt: t.field({ type: 'DateTime', nullable: true, resolve: (b) => b.completedAt ?? null }),
    duration: t.float({ nullable: true, description: 'Seconds', resolve: (b) => b.durationSeconds ?? null }),
    frontEndBytes: t.field({ type: 'Bytes', description: "Logical size of the instance's disks", resolve: (b) => b.frontEndBytes }),
    readBytes: t.field({ type: 'Bytes', resolve: (b) => b.readBytes }),
    transferredBytes: t.field({ type: 'Bytes', resolve: (b) => b.transferredBytes }),
    storedBytes: t.field({ type: 'Bytes', description: 'New bytes this backup added to the destination', resolve: (b) => b.storedBytes }),
    rate: t.float({
      nullable: true,
      description: 'Bytes read per second',
      resolve: (b) => (b.durationSeconds && b.durationSeconds > 0 ? Number(b.readBytes) / b.durationSeconds : null),
    }),
    metadata: t.field({ type: 'JSON', description: 'Instance metadata captured with the backup', resolve: (b) => b.metadata }),
    note: t.string({ nullable: true, resolve: (b) => b.note ?? null }),
    disks: t.field({ type: [BackupDiskRef], resolve: (b, _a, ctx) => loadBackupDisks(ctx, b.id) }),
    instance: t.field({ type: InstanceRef, nullable: true, resolve: (b) => viaLoader(b.instance) }),
    project: t.field({ type: ProjectRef, nullable: true, resolve: (b) => viaLoader(b.project) }),
    zone: t.field({ type: AvailabilityZoneRef, nullable: true, resolve: (b) => viaLoader(b.zone) }),
    policy: t.field({ type: PolicyRef, nullable: true, resolve: (b) => viaLoader(b.policy) }),
    destination: t.field({ type: BackupDestinationRef, nullable: true, resolve: (b) => viaLoader(b.destination) }),
    task: t.field({ type: TaskRef, nullable: true, resolve: (b) => viaLoader(b.task) }),
  }),
});

builder.loadableNode(BackupDiskRef, {
  description: 'One disk of a backup',
  id: { resolve: (d) => d.id },
  load: scopedLoad(E.BackupDisk, 'BackupDisk'),
  sort: (o) => o.id,
  fields: (t) => ({
    position: t.exposeInt('position', { description: 'Index of the disk in the backup (for one-disk restores)' }),
    name: t.exposeString('name'),
    kind: t.exposeString('kind'),
    volumeExternalId: t.string({ nullable: true, resolve: (d) => d.volumeExternalId ?? null }),
    device: t.string({ nullable: true, resolve: (d) => d.device ?? null }),
    bootIndex: t.int({ nullable: true, resolve: (d) => d.bootIndex ?? null }),
    sizeBytes: t.field({ type: 'Bytes', resolve: (d) => d.sizeBytes }),
    readBytes: t.field({ type: 'Bytes', resolve: (d) => d.readBytes }),
    storedBytes: t.field({ type: 'Bytes', resolve: (d) => d.storedBytes }),
  }),
});

builder.loadableNode(RestoreRef, {
  description: 'A restore of a backup as a new instance, or of one disk as a new volume',
  id: { resolve: (r) => r.id },
  load: scopedLoad(E.Restore, 'Restore'),
  sort: (o) => o.id,
  fields: (t) => ({
    name: t.exposeString('name'),
    state: t.field({ type: TaskStateEnum, resolve: (r) => r.state }),
    mappings: t.field({ type: 'JSON', resolve: (r) => r.mappings }),
    resultExternalId: t.string({ nullable: true, description: 'The new server or volume in OpenStack', resolve: (r) => r.resultExternalId ?? null }),
    note: t.string({ nullable: true, description: 'How the restore went where it had a choice (root disk onto an existing image, or uploaded and why)', resolve: (r) => r.note ?? null }),
    verify: t.exposeBoolean('verify', { description: "Every restored chunk's keyed hash recomputed as well (startRestore's verify)" }),
    createdAt: t.field({ type: 'DateTime', resolve: (r) => r.createdAt }),
    backup: t.field({ type: BackupRef, nullable: true, resolve: (r) => viaLoader(r.backup) }),
    project: t.field({ type: ProjectRef, nullable: true, description: 'Target project', resolve: (r) => viaLoader(r.project) }),
    zone: t.field({ type: AvailabilityZoneRef, nullable: true, resolve: (r) => viaLoader(r.zone) }),
    task: t.field({ type: TaskRef, nullable: true, resolve: (r) => viaLoader(r.task) }),
  }),
});

/** A progress event of one task, with the task row as it is now. */
/** `task` reads the row only when a subscriber selects it (progress events carry their figures). */
export type TaskProgressShape = { event: TaskEvent; task: (ctx: Context) => Promise<E.Task | null> };

export const TaskProgressRef = builder.objectRef<TaskProgressShape>('TaskProgress').implement({
  description: 'Live progress of a task',
  fields: (t) => ({
    state: t.field({ type: TaskStateEnum, resolve: (p) => p.event.state }),
    phase: t.string({ nullable: true, resolve: (p) => p.event.phase }),
    bytesDone: t.field({ type: 'Bytes', resolve: (p) => BigInt(p.event.bytesDone) }),
    bytesTotal: t.field({ type: 'Bytes', resolve: (p) => BigInt(p.event.bytesTotal) }),
    progress: t.float({
      resolve: (p) => progressOf({ state: p.event.state, bytesDone: BigInt(p.event.bytesDone), bytesTotal: BigInt(p.event.bytesTotal) }),
    }),
    rate: t.float({ nullable: true, description: 'Bytes per second', resolve: (p) => p.event.rate }),
    eta: t.float({ nullable: true, description: 'Seconds to go', resolve: (p) => p.event.eta }),
    at: t.field({ type: 'DateTime', resolve: (p) => p.event.at }),
    task: t.field({
      type: TaskRef,
      resolve: async (p, _args, ctx) => {
        const task = await p.task(ctx);
        if (!task) throw new GraphQLError('task not found', { extensions: { code: 'NOT_FOUND' } });
        return task;
      },
    }),
  }),
});

export type QuotaAlertShape = { event: QuotaAlertEvent; quota: E.Quota | null; project: E.Project };

export const QuotaAlertRef = builder.objectRef<QuotaAlertShape>('QuotaAlert').implement({
  description: 'A soft quota limit was reached',
  fields: (t) => ({
    quota: t.field({ type: QuotaRef, nullable: true, resolve: (a) => a.quota }),
    project: t.field({ type: ProjectRef, resolve: (a) => a.project }),
    instance: t.field({ type: InstanceRef, nullable: true, resolve: (a) => viaLoader(a.event.instanceId ? { id: a.event.instanceId } : null) }),
    used: t.field({ type: 'Bytes', description: 'Count or bytes used over the quota window', resolve: (a) => BigInt(a.event.used) }),
    softLimit: t.field({ type: 'Bytes', resolve: (a) => BigInt(a.event.softLimit) }),
    at: t.field({ type: 'DateTime', resolve: (a) => a.event.at }),
  }),
});
