// A backup policy (an "SLA"): when backups run, where they go, how long they are kept, and
// which instances it covers (directly or by rules).
import { Collection, EntitySchema, type Opt } from '@mikro-orm/core';
import { BaseEntity } from './base.ts';
import { Visibilities, type BackupDestination, type Visibility } from './backup-destination.ts';
import type { Project } from './project.ts';

export type Schedule = {
  /** Local times of day "HH:MM" at which a run starts. */
  timesOfDay?: string[];
  /** ISO days 1 (Monday) … 7; empty = every day. */
  daysOfWeek?: number[];
  /** Run every N hours between `betweenHours.from` and `.to` (instead of times of day). */
  intervalHours?: number;
  betweenHours?: { from: number; to: number };
  /** How long after its planned time a run may still start. */
  windowMinutes: number;
  timeZone?: string;
};

export type Retention = {
  keepLastFull?: number;
  keepLastIncremental?: number;
  keepDays?: number;
  /** Never delete the newest backup of an instance that still exists in the cloud. */
  keepLastWhileInstanceExists?: boolean;
};

/** Assigns the policy to instances matching every given field. */
export type AssignmentRule = { projectId?: string; zoneName?: string; namePattern?: string };

export class Policy extends BaseEntity {
  name!: string;
  description?: string;
  enabled: boolean & Opt = true;
  destination?: BackupDestination;
  schedules: Schedule[] & Opt = [];
  /** A full backup after every N incrementals (0 = always full). */
  fullEvery: number & Opt = 7;
  priority: number & Opt = 50;
  retries: number & Opt = 2;
  retention: Retention & Opt = {};
  rules: AssignmentRule[] & Opt = [];
  visibility: Visibility & Opt = 'ALL_PROJECTS';
  projects = new Collection<Project>(this);
}

export const PolicySchema = new EntitySchema<Policy, BaseEntity>({
  class: Policy,
  extends: 'BaseEntity',
  properties: {
    name: { type: 'string', length: 200, unique: true },
    description: { type: 'string', length: 2000, nullable: true },
    enabled: { type: 'boolean' },
    destination: { kind: 'm:1', entity: 'BackupDestination', nullable: true, deleteRule: 'set null' },
    schedules: { type: 'json' },
    fullEvery: { type: 'integer' },
    priority: { type: 'integer' },
    retries: { type: 'integer' },
    retention: { type: 'json' },
    rules: { type: 'json' },
    visibility: { enum: true, items: () => [...Visibilities] },
    projects: { kind: 'm:n', entity: 'Project', pivotTable: 'policy_project' },
  },
});
