// A unit of work: backup, restore, inventory sync, prune, verify. Created by the API (or the
// scheduler), run by a data mover; its progress is published as events.
import { BigIntType, EntitySchema, type Opt } from '@mikro-orm/core';
import { BaseEntity } from './base.ts';
import type { Backup } from './backup.ts';
import type { BackupDestination } from './backup-destination.ts';
import type { Cloud } from './cloud.ts';
import type { DataMover } from './data-mover.ts';
import type { Instance } from './instance.ts';
import type { Policy } from './policy.ts';
import type { Project } from './project.ts';
import type { ServiceAccount } from './service-account.ts';

export const TaskTypes = ['BACKUP', 'RESTORE', 'INVENTORY_SYNC', 'PRUNE', 'VERIFY'] as const;
export type TaskType = (typeof TaskTypes)[number];
export const TaskStates = ['QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED'] as const;
export type TaskState = (typeof TaskStates)[number];
export const FinalTaskStates: readonly TaskState[] = ['SUCCEEDED', 'FAILED', 'CANCELLED'];

export class Task extends BaseEntity {
  type!: TaskType;
  state: TaskState & Opt = 'QUEUED';
  /** e.g. snapshot, export, store, cleanup. */
  phase?: string;
  bytesDone: bigint & Opt = 0n;
  bytesTotal: bigint & Opt = 0n;
  /** Bytes per second, as last reported. */
  rate?: number;
  attempt: number & Opt = 0;
  maxAttempts: number & Opt = 3;
  priority: number & Opt = 50;
  cloud?: Cloud;
  project?: Project;
  instance?: Instance;
  policy?: Policy;
  destination?: BackupDestination;
  dataMover?: DataMover;
  backup?: Backup;
  /** What to do, as the API received it (backup type, restore target and mappings…). */
  params: Record<string, unknown> & Opt = {};
  createdBy?: ServiceAccount;
  /** Seconds spent per phase, e.g. {queued: 1.2, export: 30.5, store: 12.0}. */
  phaseSeconds: Record<string, number> & Opt = {};
  cancelRequested: boolean & Opt = false;
  notBefore?: Date;
  deadline?: Date;
  startedAt?: Date;
  finishedAt?: Date;
  error?: string;
  /** What a maintenance task found or did (prune: backups deleted, bytes freed; verify: problems). */
  result?: Record<string, unknown>;
  /** Set on tasks the scheduler creates: policy, instance and planned time, unique. */
  scheduleKey?: string;
  /** The request that created it (or the scheduler's own ID): its logs and OpenStack calls carry it. */
  requestId?: string;
  /** The creating request's span (W3C traceparent) when tracing is on: the task's run links to it. */
  traceparent?: string;
}

export const TaskSchema = new EntitySchema<Task, BaseEntity>({
  class: Task,
  extends: 'BaseEntity',
  indexes: [{ properties: ['project', 'createdAt'] }, { properties: ['instance'] }, { properties: ['state'] }],
  properties: {
    type: { enum: true, items: () => [...TaskTypes] },
    state: { enum: true, items: () => [...TaskStates] },
    phase: { type: 'string', length: 64, nullable: true },
    bytesDone: { type: new BigIntType('bigint') },
    bytesTotal: { type: new BigIntType('bigint') },
    rate: { type: 'double', nullable: true },
    attempt: { type: 'integer' },
    maxAttempts: { type: 'integer' },
    priority: { type: 'integer' },
    cloud: { kind: 'm:1', entity: 'Cloud', nullable: true, deleteRule: 'set null' },
    project: { kind: 'm:1', entity: 'Project', nullable: true, deleteRule: 'set null' },
    instance: { kind: 'm:1', entity: 'Instance', nullable: true, deleteRule: 'set null' },
    policy: { kind: 'm:1', entity: 'Policy', nullable: true, deleteRule: 'set null' },
    destination: { kind: 'm:1', entity: 'BackupDestination', nullable: true, deleteRule: 'set null' },
    dataMover: { kind: 'm:1', entity: 'DataMover', nullable: true, deleteRule: 'set null' },
    backup: { kind: 'm:1', entity: 'Backup', nullable: true, deleteRule: 'set null' },
    params: { type: 'json' },
    createdBy: { kind: 'm:1', entity: 'ServiceAccount', nullable: true, deleteRule: 'set null' },
    phaseSeconds: { type: 'json' },
    cancelRequested: { type: 'boolean' },
    notBefore: { type: 'Date', columnType: 'timestamptz', nullable: true },
    deadline: { type: 'Date', columnType: 'timestamptz', nullable: true },
    startedAt: { type: 'Date', columnType: 'timestamptz', nullable: true },
    finishedAt: { type: 'Date', columnType: 'timestamptz', nullable: true },
    error: { type: 'text', nullable: true },
    result: { type: 'json', nullable: true },
    scheduleKey: { type: 'string', length: 255, nullable: true, unique: true },
    requestId: { type: 'string', length: 128, nullable: true },
    traceparent: { type: 'string', length: 55, nullable: true },
  },
});
