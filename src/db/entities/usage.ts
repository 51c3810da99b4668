// The usage ledger billing reads (see billing/ledger.ts and docs/billing.md).
// - UsageInterval: one row per completed backup, with its figures and the interval it was held
//   [completedAt, deletedAt). Its dimension keys are copied at completion and never change, so
//   history does not move when inventory does; deleting a backup only closes the interval.
// - UsageSeries: one row per distinct dimension tuple (project, instance, zone, policy,
//   destination, cloud) — what reports filter and group.
// - UsageDaily: per UTC day and series with events, the day's DELTAS (sparse).
//   Rollup rows carry a copy of their series' keys, so reports group and filter them without a
//   join (measured: the join to usage_series was most of a 10,000-row report's time).
// - UsageCheckpoint: per week (Monday, UTC) and series, the CUMULATIVE figures of every event
//   before that week (dense: every series that existed). UsageCheckpointWeek lists the weeks
//   materialised. A figure at an instant is then "the week's checkpoint + the days' deltas since
//   + that day's events", each a contiguous range read, so a report over any range reads about
//   (series + a week of deltas) rows per point, not a year of history.
// Plain uuid columns (no foreign keys): the ledger outlives the rows it describes.
import { BigIntType, DecimalType, EntitySchema, type Opt } from '@mikro-orm/core';
import { BackupTypes, type BackupType } from './backup.ts';

export class UsageInterval {
  backupId!: string;
  seriesId!: string;
  cloudId!: string;
  projectId!: string;
  instanceId!: string;
  zoneId?: string;
  policyId?: string;
  destinationId!: string;
  backupType!: BackupType;
  storedBytes!: bigint;
  frontEndBytes!: bigint;
  transferredBytes!: bigint;
  /** UTC hour (0–23) the backup started: its schedule slot for slot prices. */
  startedHour!: number;
  completedAt!: Date;
  deletedAt?: Date;
}

export class UsageSeries {
  id!: string;
  /** The dimension tuple as text, unique (nullable keys written as ''). */
  key!: string;
  cloudId!: string;
  projectId!: string;
  instanceId!: string;
  zoneId?: string;
  policyId?: string;
  destinationId!: string;
}

/** The figures a rollup row carries (deltas in UsageDaily, cumulative in UsageCheckpoint), and its series' keys. */
abstract class UsageFigures {
  cloudId!: string;
  projectId!: string;
  instanceId!: string;
  zoneId?: string;
  policyId?: string;
  destinationId!: string;
  /** Change of bytes held (UsageDaily) / bytes held (UsageCheckpoint). */
  stored: string & Opt = '0';
  /** Σ over stored-byte events of delta × event time in epoch ms (for byte-time integrals). */
  storedMs: string & Opt = '0';
  storedAdded: string & Opt = '0';
  frontEndAdded: string & Opt = '0';
  transferred: string & Opt = '0';
  backups: string & Opt = '0';
}

export class UsageDaily extends UsageFigures {
  /** UTC day, 'YYYY-MM-DD'. */
  day!: string;
  seriesId!: string;
}

export class UsageCheckpoint extends UsageFigures {
  /** Monday (UTC) the checkpoint is taken at: it sums every event before this day. */
  week!: string;
  seriesId!: string;
}

export class UsageCheckpointWeek {
  week!: string;
}

const bigint = () => ({ type: new BigIntType('bigint') });
const cumulative = (precision: number) => ({ type: new DecimalType('string'), precision, scale: 0, default: 0 });

export const UsageIntervalSchema = new EntitySchema<UsageInterval>({
  class: UsageInterval,
  tableName: 'usage_interval',
  indexes: [
    { properties: ['completedAt'] },
    { properties: ['deletedAt'] },
    { properties: ['instanceId', 'completedAt'] },
    { properties: ['projectId', 'completedAt'] },
    // Per-policy average backup size over a window: an index-only range scan per policy.
    {
      name: 'usage_interval_policy_index',
      expression: `create index "usage_interval_policy_index" on "usage_interval" ("policy_id", "completed_at") include ("stored_bytes", "project_id")`,
    },
    // Front-end capacity: an instance's last full backup, found by one short backward
    // index-only scan (the columns it reports are included).
    {
      name: 'usage_interval_full_index',
      expression: `create index "usage_interval_full_index" on "usage_interval" ("instance_id", "completed_at") include ("deleted_at", "front_end_bytes", "backup_id", "cloud_id", "project_id", "zone_id", "policy_id", "destination_id", "started_hour") where "backup_type" = 'FULL'`,
    },
  ],
  properties: {
    backupId: { type: 'uuid', primary: true },
    seriesId: { type: 'uuid' },
    cloudId: { type: 'uuid' },
    projectId: { type: 'uuid' },
    instanceId: { type: 'uuid' },
    zoneId: { type: 'uuid', nullable: true },
    policyId: { type: 'uuid', nullable: true },
    destinationId: { type: 'uuid' },
    backupType: { enum: true, items: () => [...BackupTypes] },
    storedBytes: bigint(),
    frontEndBytes: bigint(),
    transferredBytes: bigint(),
    startedHour: { type: 'smallint' },
    completedAt: { type: 'Date', columnType: 'timestamptz' },
    deletedAt: { type: 'Date', columnType: 'timestamptz', nullable: true },
  },
});

export const UsageSeriesSchema = new EntitySchema<UsageSeries>({
  class: UsageSeries,
  tableName: 'usage_series',
  indexes: [{ properties: ['projectId'] }],
  properties: {
    id: { type: 'uuid', primary: true },
    key: { type: 'string', length: 240, unique: true },
    cloudId: { type: 'uuid' },
    projectId: { type: 'uuid' },
    instanceId: { type: 'uuid' },
    zoneId: { type: 'uuid', nullable: true },
    policyId: { type: 'uuid', nullable: true },
    destinationId: { type: 'uuid' },
  },
});

const figures = {
  cloudId: { type: 'uuid' },
  projectId: { type: 'uuid' },
  instanceId: { type: 'uuid' },
  zoneId: { type: 'uuid', nullable: true },
  policyId: { type: 'uuid', nullable: true },
  destinationId: { type: 'uuid' },
  stored: cumulative(30),
  storedMs: cumulative(40),
  storedAdded: cumulative(30),
  frontEndAdded: cumulative(30),
  transferred: cumulative(30),
  backups: cumulative(20),
};

// Primary keys lead with the day/week: reads are ranges of days, and a week's checkpoint rows.
export const UsageDailySchema = new EntitySchema<UsageDaily>({
  class: UsageDaily,
  tableName: 'usage_daily',
  // A few series (a filter's) read their days through the first; a tenant's projects the second.
  indexes: [{ properties: ['seriesId', 'day'] }, { properties: ['projectId', 'day'] }],
  properties: {
    day: { type: 'date', primary: true },
    seriesId: { type: 'uuid', primary: true },
    ...figures,
  },
});

export const UsageCheckpointSchema = new EntitySchema<UsageCheckpoint>({
  class: UsageCheckpoint,
  tableName: 'usage_checkpoint',
  indexes: [{ properties: ['projectId', 'week'] }],
  properties: {
    week: { type: 'date', primary: true },
    seriesId: { type: 'uuid', primary: true },
    ...figures,
  },
});

export const UsageCheckpointWeekSchema = new EntitySchema<UsageCheckpointWeek>({
  class: UsageCheckpointWeek,
  tableName: 'usage_checkpoint_week',
  properties: {
    week: { type: 'date', primary: true },
  },
});
