// The usage ledger billing reads (see billing/ledger.ts and docs/billing.md).
// - UsageInterval: one row per completed backup, with its figures and the interval it was held
//   [completedAt, deletedAt). Its dimension keys are copied at completion and never change, so
//   history does not move when inventory does; deleting a backup only closes the interval.
// - UsageSeries: one row per distinct dimension tuple (project, instance, zone, policy,
//   destination, cloud) — what reports filter and group.
// - UsageDaily: per series and UTC day with events, the CUMULATIVE figures up to the end of that
//   day. Any figure at an instant is then "last row before its day + that day's events", so a
//   report over any range reads two rows per series, not a year of history.
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

export class UsageDaily {
  seriesId!: string;
  /** UTC day, 'YYYY-MM-DD'. */
  day!: string;
  /** Bytes held at the end of the day. */
  storedCum: string & Opt = '0';
  /** Σ over stored-byte events of delta × event time in epoch ms (for byte-time integrals). */
  storedMsCum: string & Opt = '0';
  storedAddedCum: string & Opt = '0';
  frontEndAddedCum: string & Opt = '0';
  transferredCum: string & Opt = '0';
  backupsCum: string & Opt = '0';
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
    // Front-end capacity: an instance's last full backup, found by one short backward index scan.
    {
      name: 'usage_interval_full_index',
      expression: `create index "usage_interval_full_index" on "usage_interval" ("instance_id", "completed_at") where "backup_type" = 'FULL'`,
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

export const UsageDailySchema = new EntitySchema<UsageDaily>({
  class: UsageDaily,
  tableName: 'usage_daily',
  properties: {
    seriesId: { type: 'uuid', primary: true },
    day: { type: 'date', primary: true },
    storedCum: cumulative(30),
    storedMsCum: cumulative(40),
    storedAddedCum: cumulative(30),
    frontEndAddedCum: cumulative(30),
    transferredCum: cumulative(30),
    backupsCum: cumulative(20),
  },
});
