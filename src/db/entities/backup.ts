// A backup of one instance: a complete point in time in a destination, with the figures
// billing aggregates and the instance metadata captured with it.
import { BigIntType, Collection, EntitySchema, type Opt } from '@mikro-orm/core';
import { BaseEntity } from './base.ts';
import type { AvailabilityZone } from './availability-zone.ts';
import type { BackupDestination } from './backup-destination.ts';
import type { Cloud } from './cloud.ts';
import type { Instance, Volume } from './instance.ts';
import type { Policy } from './policy.ts';
import type { Project } from './project.ts';
import type { Task } from './task.ts';

export const BackupTypes = ['FULL', 'INCREMENTAL'] as const;
export type BackupType = (typeof BackupTypes)[number];
export const BackupStates = ['RUNNING', 'AVAILABLE', 'FAILED', 'DELETED'] as const;
export type BackupState = (typeof BackupStates)[number];

export class Backup extends BaseEntity {
  cloud!: Cloud;
  project!: Project;
  instance!: Instance;
  zone?: AvailabilityZone;
  policy?: Policy;
  destination!: BackupDestination;
  task?: Task;
  parent?: Backup;
  type: BackupType & Opt = 'FULL';
  state: BackupState & Opt = 'RUNNING';
  /** The backup's ID inside the destination's repository. */
  repositoryBackupId?: string;
  completedAt?: Date;
  deletedAt?: Date;
  durationSeconds?: number;
  frontEndBytes: bigint & Opt = 0n;
  readBytes: bigint & Opt = 0n;
  transferredBytes: bigint & Opt = 0n;
  storedBytes: bigint & Opt = 0n;
  metadata: Record<string, unknown> & Opt = {};
  /** Why an incremental was taken as a full one, e.g. "base snapshot missing". */
  note?: string;
  disks = new Collection<BackupDisk>(this);
}

export class BackupDisk extends BaseEntity {
  backup!: Backup;
  project!: Project;
  volume?: Volume;
  /** Position in the backup (the repository's disk index). */
  position!: number;
  name!: string;
  kind!: string;
  volumeExternalId?: string;
  device?: string;
  bootIndex?: number;
  /** What the strategy needs for the next incremental of this disk (libvirt checkpoint, RBD snapshot). */
  checkpoint?: string;
  sizeBytes: bigint & Opt = 0n;
  readBytes: bigint & Opt = 0n;
  storedBytes: bigint & Opt = 0n;
}

export const BackupSchema = new EntitySchema<Backup, BaseEntity>({
  class: Backup,
  extends: 'BaseEntity',
  indexes: [{ properties: ['instance', 'createdAt'] }, { properties: ['project', 'createdAt'] }],
  properties: {
    cloud: { kind: 'm:1', entity: 'Cloud', deleteRule: 'cascade' },
    project: { kind: 'm:1', entity: 'Project', deleteRule: 'cascade' },
    instance: { kind: 'm:1', entity: 'Instance', deleteRule: 'cascade' },
    zone: { kind: 'm:1', entity: 'AvailabilityZone', nullable: true, deleteRule: 'set null' },
    policy: { kind: 'm:1', entity: 'Policy', nullable: true, deleteRule: 'set null' },
    destination: { kind: 'm:1', entity: 'BackupDestination' },
    task: { kind: 'm:1', entity: 'Task', nullable: true, deleteRule: 'set null' },
    parent: { kind: 'm:1', entity: () => Backup, nullable: true, deleteRule: 'set null' },
    type: { enum: true, items: () => [...BackupTypes] },
    state: { enum: true, items: () => [...BackupStates] },
    repositoryBackupId: { type: 'string', length: 255, nullable: true },
    completedAt: { type: 'Date', columnType: 'timestamptz', nullable: true },
    deletedAt: { type: 'Date', columnType: 'timestamptz', nullable: true },
    durationSeconds: { type: 'double', nullable: true },
    frontEndBytes: { type: new BigIntType('bigint') },
    readBytes: { type: new BigIntType('bigint') },
    transferredBytes: { type: new BigIntType('bigint') },
    storedBytes: { type: new BigIntType('bigint') },
    metadata: { type: 'json' },
    note: { type: 'text', nullable: true },
    disks: { kind: '1:m', entity: () => BackupDisk, mappedBy: 'backup', orderBy: { position: 'asc' } },
  },
});

export const BackupDiskSchema = new EntitySchema<BackupDisk, BaseEntity>({
  class: BackupDisk,
  extends: 'BaseEntity',
  uniques: [{ properties: ['backup', 'position'] }],
  properties: {
    backup: { kind: 'm:1', entity: () => Backup, deleteRule: 'cascade' },
    project: { kind: 'm:1', entity: 'Project', deleteRule: 'cascade' },
    volume: { kind: 'm:1', entity: 'Volume', nullable: true, deleteRule: 'set null' },
    position: { type: 'integer' },
    name: { type: 'string', length: 255 },
    kind: { type: 'string', length: 32 },
    volumeExternalId: { type: 'string', length: 255, nullable: true },
    device: { type: 'string', length: 255, nullable: true },
    bootIndex: { type: 'integer', nullable: true },
    checkpoint: { type: 'text', nullable: true },
    sizeBytes: { type: new BigIntType('bigint') },
    readBytes: { type: new BigIntType('bigint') },
    storedBytes: { type: new BigIntType('bigint') },
  },
});
