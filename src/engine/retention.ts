// Retention: which backups of ONE instance in ONE destination a policy keeps. Pure (no I/O).
//
// A backup is kept if ANY rule keeps it (the rules are a union, as in restic's `forget`):
//   - keepLastFull N         → the N newest FULL backups;
//   - keepLastIncremental N  → the N newest INCREMENTAL backups;
//   - keepDays D             → every backup completed less than D days before `now` (or later);
//   - keepLastWhileInstanceExists → the newest backup, while the instance exists in the cloud.
// Operators' rules (`strongbox repo prune`, restic's `forget` semantics), on the same function:
//   - keepLast N             → the N newest backups of any type;
//   - keepHourly/Daily/Weekly/Monthly/Yearly N → the newest backup of each of the N most recent
//     UTC hours / days / ISO weeks / months / years that have a backup;
//   - keepWithinMs T         → every backup completed less than T ms before `now`.
// Every other backup is deleted. A rule left unset keeps nothing by itself; a retention with NO
// rule set keeps everything (an empty policy must never mean "delete all").
//
// The parent chain does not protect anything: every backup is a complete point in time in the
// repository (its manifests name every chunk; restore never replays a chain), so deleting an
// older FULL leaves newer INCREMENTALs restorable. Garbage collection keeps every chunk a kept
// backup references. Only completed (AVAILABLE) backups are candidates; running or failed ones
// are never passed here.
import type { Retention } from '../db/entities/index.ts';

export type RetentionCandidate = {
  id: string;
  type: 'FULL' | 'INCREMENTAL';
  completedAt: Date;
  parentId?: string | null;
};

/** A policy's retention plus the operators' rules of `strongbox repo prune`. */
export type RetentionRules = Retention & {
  keepLast?: number;
  keepHourly?: number;
  keepDaily?: number;
  keepWeekly?: number;
  keepMonthly?: number;
  keepYearly?: number;
  keepWithinMs?: number;
};

export type KeepReason =
  | 'LAST_FULL'
  | 'LAST_INCREMENTAL'
  | 'WITHIN_DAYS'
  | 'LAST_WHILE_INSTANCE_EXISTS'
  | 'NO_RULE'
  | 'LAST'
  | 'HOURLY'
  | 'DAILY'
  | 'WEEKLY'
  | 'MONTHLY'
  | 'YEARLY'
  | 'WITHIN';

export type RetentionPlan = {
  /** Kept backups, newest first, each with the rules that keep it. */
  keep: { id: string; reasons: KeepReason[] }[];
  /** Ids of the backups to delete, newest first. */
  delete: string[];
};

export class RetentionError extends Error {}

const DAY_MS = 86_400_000;

const COUNTS = ['keepLastFull', 'keepLastIncremental', 'keepDays', 'keepLast', 'keepHourly', 'keepDaily', 'keepWeekly', 'keepMonthly', 'keepYearly', 'keepWithinMs'] as const;

/** Calendar rules: the bucket (UTC) a backup time falls in. */
const CALENDAR: { rule: 'keepHourly' | 'keepDaily' | 'keepWeekly' | 'keepMonthly' | 'keepYearly'; reason: KeepReason; bucket: (t: Date) => string }[] = [
  { rule: 'keepHourly', reason: 'HOURLY', bucket: (t) => t.toISOString().slice(0, 13) },
  { rule: 'keepDaily', reason: 'DAILY', bucket: (t) => t.toISOString().slice(0, 10) },
  { rule: 'keepWeekly', reason: 'WEEKLY', bucket: isoWeek },
  { rule: 'keepMonthly', reason: 'MONTHLY', bucket: (t) => t.toISOString().slice(0, 7) },
  { rule: 'keepYearly', reason: 'YEARLY', bucket: (t) => t.toISOString().slice(0, 4) },
];

/** Throws RetentionError for counts or durations that are not whole numbers ≥ 0. */
export function validateRetention(r: RetentionRules): void {
  for (const key of COUNTS) {
    const v = r[key];
    if (v !== undefined && v !== null && (!Number.isInteger(v) || v < 0)) throw new RetentionError(`retention ${key} must be a whole number ≥ 0, got ${v}`);
  }
}

export function hasRetentionRule(r: RetentionRules): boolean {
  return COUNTS.some((key) => r[key] != null) || r.keepLastWhileInstanceExists === true;
}

export function planRetention(
  backups: readonly RetentionCandidate[],
  retention: RetentionRules,
  opts: { now: Date; instanceExists: boolean },
): RetentionPlan {
  validateRetention(retention);
  // Newest first; ties broken by id so the plan does not depend on input order.
  const sorted = [...backups].sort((a, b) => b.completedAt.getTime() - a.completedAt.getTime() || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
  if (!hasRetentionRule(retention)) return { keep: sorted.map((b) => ({ id: b.id, reasons: ['NO_RULE'] })), delete: [] };

  const cutoff = retention.keepDays != null ? opts.now.getTime() - retention.keepDays * DAY_MS : null;
  const withinCutoff = retention.keepWithinMs != null ? opts.now.getTime() - retention.keepWithinMs : null;
  const seen = { FULL: 0, INCREMENTAL: 0 };
  // Per calendar rule: buckets still to fill, and the bucket of the last backup seen (restic's
  // rule: newest first, a backup is kept when it opens a new bucket while the count lasts).
  const calendar = CALENDAR.filter((c) => retention[c.rule] != null).map((c) => ({ ...c, left: retention[c.rule]!, last: '' }));
  const keep: RetentionPlan['keep'] = [];
  const del: string[] = [];
  sorted.forEach((b, i) => {
    const reasons: KeepReason[] = [];
    const nth = seen[b.type]++;
    if (b.type === 'FULL' && retention.keepLastFull != null && nth < retention.keepLastFull) reasons.push('LAST_FULL');
    if (b.type === 'INCREMENTAL' && retention.keepLastIncremental != null && nth < retention.keepLastIncremental) reasons.push('LAST_INCREMENTAL');
    if (cutoff !== null && b.completedAt.getTime() > cutoff) reasons.push('WITHIN_DAYS');
    if (i === 0 && retention.keepLastWhileInstanceExists && opts.instanceExists) reasons.push('LAST_WHILE_INSTANCE_EXISTS');
    if (retention.keepLast != null && i < retention.keepLast) reasons.push('LAST');
    for (const c of calendar) {
      const bucket = c.bucket(b.completedAt);
      if (c.left > 0 && bucket !== c.last) {
        reasons.push(c.reason);
        c.left--;
        c.last = bucket;
      }
    }
    if (withinCutoff !== null && b.completedAt.getTime() > withinCutoff) reasons.push('WITHIN');
    if (reasons.length) keep.push({ id: b.id, reasons });
    else del.push(b.id);
  });
  return { keep, delete: del };
}

/** ISO 8601 week of a UTC time, e.g. "2026-W48" (weeks start on Monday; week 1 holds 4 January). */
function isoWeek(t: Date): string {
  const d = new Date(Date.UTC(t.getUTCFullYear(), t.getUTCMonth(), t.getUTCDate()));
  d.setUTCDate(d.getUTCDate() + 3 - ((d.getUTCDay() + 6) % 7)); // the Thursday of this week
  const year = d.getUTCFullYear();
  const week = 1 + Math.floor((d.getTime() - Date.UTC(year, 0, 1)) / (7 * DAY_MS));
  return `${year}-W${String(week).padStart(2, '0')}`;
}
