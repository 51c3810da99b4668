// The usage ledger: what the engine calls when a backup completes and when it is deleted, in
// the same transaction as the backup's own change. Each call appends history (an interval
// opened, or closed) and adds the event to its day's delta row; weekly checkpoints after the
// event's day exist only for late events and are corrected too. The first event of a new week
// materialises the checkpoints of the weeks since the last one.
// See docs/billing.md for the model and src/db/entities/usage.ts for the tables.
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Backup, BackupType } from '../src/db/entities/index.ts';

/** What the ledger keeps of a completed backup. Keys are copied: later inventory changes do not move history. */
export type UsageRecord = {
  backupId: string;
  cloudId: string;
  projectId: string;
  instanceId: string;
  zoneId?: string | null;
  policyId?: string | null;
  destinationId: string;
  type: BackupType;
  storedBytes: bigint;
  frontEndBytes: bigint;
  transferredBytes: bigint;
  completedAt: Date;
  /** When the backup started (its schedule slot); defaults to completedAt. */
  startedAt?: Date;
};

export class LedgerError extends Error {
  static notCompleted(backupId: string) {
    return new LedgerError(`backup ${backupId} has no completedAt: only completed backups enter the ledger`);
  }
  static negative(backupId: string) {
    return new LedgerError(`backup ${backupId} has a negative size`);
  }
}

const idOf = (ref: { id: string } | undefined | null) => ref?.id ?? null;

/** The ledger's view of a Backup entity (relations need only be references). */
export function usageFromBackup(backup: Backup): UsageRecord {
  if (!backup.completedAt) throw LedgerError.notCompleted(backup.id);
  const started = backup.durationSeconds != null ? new Date(backup.completedAt.getTime() - backup.durationSeconds * 1000) : backup.completedAt;
  return {
    backupId: backup.id,
    cloudId: backup.cloud.id,
    projectId: backup.project.id,
    instanceId: backup.instance.id,
    zoneId: idOf(backup.zone),
    policyId: idOf(backup.policy),
    destinationId: backup.destination.id,
    type: backup.type,
    storedBytes: backup.storedBytes,
    frontEndBytes: backup.frontEndBytes,
    transferredBytes: backup.transferredBytes,
    completedAt: backup.completedAt,
    startedAt: started,
  };
}

export function seriesKey(r: Pick<UsageRecord, 'cloudId' | 'projectId' | 'instanceId' | 'zoneId' | 'policyId' | 'destinationId'>): string {
  return [r.projectId, r.instanceId, r.zoneId ?? '', r.policyId ?? '', r.destinationId, r.cloudId].join('|');
}

/** UTC calendar day of an instant, 'YYYY-MM-DD'. */
export function utcDay(t: Date): string {
  return t.toISOString().slice(0, 10);
}

type Deltas = { stored: bigint; storedAdded: bigint; frontEndAdded: bigint; transferred: bigint; backups: bigint };

/** Monday (UTC) of the week holding `day` ('YYYY-MM-DD'). */
export function weekStart(day: string): string {
  const d = new Date(`${day}T00:00:00.000Z`);
  const back = (d.getUTCDay() + 6) % 7;
  return utcDay(new Date(d.getTime() - back * 86_400_000));
}

const addDays = (day: string, n: number) => utcDay(new Date(new Date(`${day}T00:00:00.000Z`).getTime() + n * 86_400_000));

// Writers of events share this lock; materialising checkpoints takes it alone, so a checkpoint
// never misses an event committed concurrently.
const LEDGER_LOCK = 7_366_114_201;

const FIGURES = 'stored, stored_ms, stored_added, front_end_added, transferred, backups';
const SUMS = 'sum(stored), sum(stored_ms), sum(stored_added), sum(front_end_added), sum(transferred), sum(backups)';
const ADD = (t: string) => FIGURES.split(', ').map((c) => `${c} = ${t}.${c} + excluded.${c}`).join(', ');

const KEYS = 'cloud_id, project_id, instance_id, zone_id, policy_id, destination_id';
const keysOf = (t: string) => KEYS.split(', ').map((c) => `${t}.${c}`).join(', ');

/** Fold one event at `at` into its day's delta row, and into checkpoints already taken after it. */
async function applyEvent(em: EntityManager, seriesId: string, at: Date, d: Deltas): Promise<void> {
  await closeWeeks(em, at < new Date() ? at : new Date());
  await em.execute(`select pg_advisory_xact_lock_shared(?)`, [LEDGER_LOCK]);
  const day = utcDay(at);
  const values = [d.stored, d.stored * BigInt(at.getTime()), d.storedAdded, d.frontEndAdded, d.transferred, d.backups].map(String);
  // Rollup rows carry their series' keys (copied from usage_series).
  await em.execute(
    `insert into usage_daily (day, series_id, ${KEYS}, ${FIGURES})
     select ?::date, s.id, ${keysOf('s')}, ?::numeric, ?::numeric, ?::numeric, ?::numeric, ?::numeric, ?::numeric from usage_series s where s.id = ?::uuid
     on conflict (day, series_id) do update set ${ADD('usage_daily')}`,
    [day, ...values, seriesId],
  );
  // Late events only (normally no checkpoint lies after "now").
  await em.execute(
    `insert into usage_checkpoint (week, series_id, ${KEYS}, ${FIGURES})
     select w.week, s.id, ${keysOf('s')}, ?::numeric, ?::numeric, ?::numeric, ?::numeric, ?::numeric, ?::numeric
     from usage_checkpoint_week w, usage_series s where s.id = ?::uuid and w.week > ?::date
     on conflict (week, series_id) do update set ${ADD('usage_checkpoint')}`,
    [...values, seriesId, day],
  );
}

/**
 * Materialises the weekly checkpoints up to the week of `upTo`: each is the previous one plus
 * the week's deltas, per series (set-based). Idempotent; the first checkpoint is the week of
 * the earliest event.
 */
export async function closeWeeks(em: EntityManager, upTo: Date): Promise<void> {
  const target = weekStart(utcDay(upTo));
  const latest = async () => (await em.execute<{ week: string | null }[]>(`select max(week)::text as week from usage_checkpoint_week`))[0]!.week;
  const last = await latest();
  if (last !== null && last >= target) return;
  await em.transactional(async (tx) => {
    await tx.execute(`select pg_advisory_xact_lock(?)`, [LEDGER_LOCK]);
    let prev = (await tx.execute<{ week: string | null }[]>(`select max(week)::text as week from usage_checkpoint_week`))[0]!.week;
    if (prev === null) {
      const [first] = await tx.execute<{ day: string | null }[]>(`select min(day)::text as day from usage_daily`);
      if (!first!.day) return;
      prev = weekStart(first!.day);
      if (prev > target) return;
      await tx.execute(`insert into usage_checkpoint_week (week) values (?::date)`, [prev]); // nothing happened before it
    }
    for (let week = addDays(prev, 7); week <= target; prev = week, week = addDays(week, 7)) {
      await tx.execute(
        `insert into usage_checkpoint (week, series_id, ${KEYS}, ${FIGURES})
         select ?::date, series_id, ${KEYS}, ${SUMS} from (
           select series_id, ${KEYS}, ${FIGURES} from usage_checkpoint where week = ?::date
           union all
           select series_id, ${KEYS}, ${FIGURES} from usage_daily where day >= ?::date and day < ?::date
         ) x group by series_id, ${KEYS}`,
        [week, prev, prev, week],
      );
      await tx.execute(`insert into usage_checkpoint_week (week) values (?::date)`, [week]);
    }
  });
}

async function seriesIdFor(em: EntityManager, r: UsageRecord): Promise<string> {
  const key = seriesKey(r);
  await em.execute(
    `insert into usage_series (id, key, cloud_id, project_id, instance_id, zone_id, policy_id, destination_id)
     values (gen_random_uuid(), ?, ?::uuid, ?::uuid, ?::uuid, ?::uuid, ?::uuid, ?::uuid) on conflict (key) do nothing`,
    [key, r.cloudId, r.projectId, r.instanceId, r.zoneId ?? null, r.policyId ?? null, r.destinationId],
  );
  const [row] = await em.execute<{ id: string }[]>(`select id from usage_series where key = ?`, [key]);
  return row!.id;
}

/**
 * Opens the backup's interval at its completion. Idempotent: a backup already in the ledger is
 * left as it is (history is never rewritten). Returns whether it was recorded now.
 */
export async function recordBackupCompleted(em: EntityManager, r: UsageRecord): Promise<boolean> {
  if (r.storedBytes < 0n || r.frontEndBytes < 0n || r.transferredBytes < 0n) throw LedgerError.negative(r.backupId);
  return em.transactional(async (tx) => {
    const seriesId = await seriesIdFor(tx, r);
    const inserted = await tx.execute<{ backup_id: string }[]>(
      `insert into usage_interval (backup_id, series_id, cloud_id, project_id, instance_id, zone_id, policy_id, destination_id,
         backup_type, stored_bytes, front_end_bytes, transferred_bytes, started_hour, completed_at)
       values (?::uuid, ?::uuid, ?::uuid, ?::uuid, ?::uuid, ?::uuid, ?::uuid, ?::uuid, ?, ?::bigint, ?::bigint, ?::bigint, ?, ?::timestamptz)
       on conflict (backup_id) do nothing returning backup_id`,
      [r.backupId, seriesId, r.cloudId, r.projectId, r.instanceId, r.zoneId ?? null, r.policyId ?? null, r.destinationId, r.type,
        r.storedBytes.toString(), r.frontEndBytes.toString(), r.transferredBytes.toString(), (r.startedAt ?? r.completedAt).getUTCHours(),
        r.completedAt.toISOString()],
    );
    if (inserted.length === 0) return false;
    await applyEvent(tx, seriesId, r.completedAt, {
      stored: r.storedBytes, storedAdded: r.storedBytes, frontEndAdded: r.frontEndBytes, transferred: r.transferredBytes, backups: 1n,
    });
    return true;
  });
}

/**
 * Closes the backup's interval at `deletedAt` (never before it opened: a deletion stamped
 * earlier than the completion gives a zero-length interval). A backup not in the ledger, or
 * already closed, is left alone. Returns whether an interval was closed now.
 */
export async function recordBackupDeleted(em: EntityManager, backupId: string, deletedAt: Date): Promise<boolean> {
  return em.transactional(async (tx) => {
    const [row] = await tx.execute<{ series_id: string; stored_bytes: string; deleted_at: Date }[]>(
      `update usage_interval set deleted_at = greatest(completed_at, ?::timestamptz)
       where backup_id = ?::uuid and deleted_at is null returning series_id, stored_bytes, deleted_at`,
      [deletedAt.toISOString(), backupId],
    );
    if (!row) return false;
    const stored = BigInt(row.stored_bytes);
    await applyEvent(tx, row.series_id, new Date(row.deleted_at), { stored: -stored, storedAdded: 0n, frontEndAdded: 0n, transferred: 0n, backups: 0n });
    return true;
  });
}

/**
 * Enters every completed backup that is not in the ledger yet (and closes the intervals of
 * deleted ones), set-based, then rebuilds the daily rollups. For a first deployment on existing
 * data, and for bulk loads; normal operation uses the two functions above.
 */
export async function backfillFromBackups(em: EntityManager): Promise<void> {
  await em.transactional(async (tx) => {
    await tx.execute(
      `insert into usage_series (id, key, cloud_id, project_id, instance_id, zone_id, policy_id, destination_id)
       select gen_random_uuid(), k.key, k.cloud_id, k.project_id, k.instance_id, k.zone_id, k.policy_id, k.destination_id
       from (select distinct concat_ws('|', b.project_id, b.instance_id, coalesce(b.zone_id::text, ''), coalesce(b.policy_id::text, ''), b.destination_id, b.cloud_id) as key,
               b.cloud_id, b.project_id, b.instance_id, b.zone_id, b.policy_id, b.destination_id
             from backup b where b.completed_at is not null and b.state in ('AVAILABLE', 'DELETED')) k
       on conflict (key) do nothing`,
    );
    await tx.execute(
      `insert into usage_interval (backup_id, series_id, cloud_id, project_id, instance_id, zone_id, policy_id, destination_id,
         backup_type, stored_bytes, front_end_bytes, transferred_bytes, started_hour, completed_at, deleted_at)
       select b.id, s.id, b.cloud_id, b.project_id, b.instance_id, b.zone_id, b.policy_id, b.destination_id, b.type,
              b.stored_bytes, b.front_end_bytes, b.transferred_bytes,
              extract(hour from (b.completed_at - make_interval(secs => coalesce(b.duration_seconds, 0))) at time zone 'UTC')::smallint,
              b.completed_at, case when b.deleted_at is null then null else greatest(b.completed_at, b.deleted_at) end
       from backup b
       join usage_series s on s.key = concat_ws('|', b.project_id, b.instance_id, coalesce(b.zone_id::text, ''), coalesce(b.policy_id::text, ''), b.destination_id, b.cloud_id)
       where b.completed_at is not null and b.state in ('AVAILABLE', 'DELETED')
       on conflict (backup_id) do update set deleted_at = excluded.deleted_at
         where usage_interval.deleted_at is null and excluded.deleted_at is not null`,
    );
    await rebuildDailyRollups(tx);
  });
}

/** Recomputes the daily deltas and the weekly checkpoints from the intervals (repair and bulk loads; equals the incremental result). */
export async function rebuildDailyRollups(em: EntityManager, upTo: Date = new Date()): Promise<void> {
  await em.transactional(async (tx) => {
    await tx.execute(`select pg_advisory_xact_lock(?)`, [LEDGER_LOCK]);
    await tx.execute(`delete from usage_checkpoint`);
    await tx.execute(`delete from usage_checkpoint_week`);
    await tx.execute(`delete from usage_daily`);
    await tx.execute(
      `insert into usage_daily (day, series_id, ${KEYS}, ${FIGURES})
       select day, series_id, ${KEYS}, ${SUMS}
       from (
         select (completed_at at time zone 'UTC')::date as day, series_id, ${KEYS}, stored_bytes::numeric as stored,
                stored_bytes::numeric * floor(extract(epoch from completed_at) * 1000) as stored_ms,
                stored_bytes::numeric as stored_added, front_end_bytes::numeric as front_end_added,
                transferred_bytes::numeric as transferred, 1 as backups
         from usage_interval
         union all
         select (deleted_at at time zone 'UTC')::date, series_id, ${KEYS}, -stored_bytes::numeric,
                -stored_bytes::numeric * floor(extract(epoch from deleted_at) * 1000), 0, 0, 0, 0
         from usage_interval where deleted_at is not null
       ) events
       group by day, series_id, ${KEYS}
       order by day, series_id`,
    );
    await closeWeeks(tx, upTo);
  });
}

/** The ledger as the engine sees it: told when a backup becomes available or is deleted. */
export const usageLedger = {
  async backupCompleted(em: EntityManager, backup: Backup): Promise<void> {
    await recordBackupCompleted(em, usageFromBackup(backup));
  },
  async backupDeleted(em: EntityManager, backupId: string, at: Date): Promise<void> {
    await recordBackupDeleted(em, backupId, at);
  },
};
