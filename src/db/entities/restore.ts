// A restore of a backup as a new instance (or one disk as a new volume), in the same or
// another project/zone, with network and image mappings.
import { EntitySchema, type Opt } from '@mikro-orm/core';
import { BaseEntity } from './base.ts';
import type { AvailabilityZone } from './availability-zone.ts';
import type { Backup } from './backup.ts';
import type { Project } from './project.ts';
import type { Task } from './task.ts';

export type RestoreMappings = {
  networks?: { from: string; to: string }[];
  images?: { from: string; to: string }[];
  volumeTypes?: { from: string; to: string }[];
  flavorId?: string;
  keyName?: string;
  securityGroups?: string[];
  /** Restore only this disk (position) to a new volume. */
  diskPosition?: number;
};

export class Restore extends BaseEntity {
  backup!: Backup;
  /** The project the restored instance lands in (may differ from the backup's). */
  project!: Project;
  task?: Task;
  zone?: AvailabilityZone;
  name!: string;
  mappings: RestoreMappings & Opt = {};
  state: ('QUEUED' | 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'CANCELLED') & Opt = 'QUEUED';
  /** The new server's (or volume's) ID in OpenStack. */
  resultExternalId?: string;
  /** How the restore went where it had a choice (e.g. root disk: image reused or uploaded, and why). */
  note?: string;
  /** Recompute every restored chunk's keyed id as well (the AES-GCM seal is checked either way). */
  verify: boolean & Opt = false;
}

export const RestoreSchema = new EntitySchema<Restore, BaseEntity>({
  class: Restore,
  extends: 'BaseEntity',
  properties: {
    backup: { kind: 'm:1', entity: 'Backup', deleteRule: 'cascade' },
    project: { kind: 'm:1', entity: 'Project', deleteRule: 'cascade' },
    task: { kind: 'm:1', entity: 'Task', nullable: true, deleteRule: 'set null' },
    zone: { kind: 'm:1', entity: 'AvailabilityZone', nullable: true, deleteRule: 'set null' },
    name: { type: 'string', length: 255 },
    mappings: { type: 'json' },
    state: { enum: true, items: () => ['QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED'] },
    resultExternalId: { type: 'string', length: 255, nullable: true },
    note: { type: 'text', nullable: true },
    verify: { type: 'boolean', default: false },
  },
});
