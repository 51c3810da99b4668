// Retention: which backups of ONE instance in ONE destination a policy keeps. Pure (no I/O).
//
// A backup is kept if ANY rule keeps it (the rules are a union, as in restic's `forget`):
//   - keepLastFull N         → the N newest FULL backups;
//   - keepLastIncremental N  → the N newest INCREMENTAL backups;
//   - keepDays D             → every backup completed less than D days before `now` (or later);
//   - keepLastWhileInstanceExists → the newest backup, while the instance exists in the cloud.
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

export type KeepReason = 'LAST_FULL' | 'LAST_INCREMENTAL' | 'WITHIN_DAYS' | 'LAST_WHILE_INSTANCE_EXISTS' | 'NO_RULE';

export type RetentionPlan = {
  /** Kept backups, newest first, each with the rules that keep it. */
  keep: { id: string; reasons: KeepReason[] }[];
  /** Ids of the backups to delete, newest first. */
  delete: string[];
};

export class RetentionError extends Error {}

const DAY_MS = 86_400_000;

/** Throws RetentionError for counts or days that are not whole numbers ≥ 0. */
export function validateRetention(r: Retention): void {
  for (const key of ['keepLastFull', 'keepLastIncremental', 'keepDays'] as const) {
    const v = r[key];
    if (v !== undefined && v !== null && (!Number.isInteger(v) || v < 0)) throw new RetentionError(`retention ${key} must be a whole number ≥ 0, got ${v}`);
  }
}

export function hasRetentionRule(r: Retention): boolean {
  return r.keepLastFull != null || r.keepLastIncremental != null || r.keepDays != null || r.keepLastWhileInstanceExists === true;
}

export function planRetention(
  backups: readonly RetentionCandidate[],
  retention: Retention,
  opts: { now: Date; instanceExists: boolean },
): RetentionPlan {
  validateRetention(retention);
  // Newest first; ties broken by id so the plan does not depend on input order.
  const sorted = [...backups].sort((a, b) => b.completedAt.getTime() - a.completedAt.getTime() || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
  if (!hasRetentionRule(retention)) return { keep: sorted.map((b) => ({ id: b.id, reasons: ['NO_RULE'] })), delete: [] };

  const cutoff = retention.keepDays != null ? opts.now.getTime() - retention.keepDays * DAY_MS : null;
  const seen = { FULL: 0, INCREMENTAL: 0 };
  const keep: RetentionPlan['keep'] = [];
  const del: string[] = [];
  sorted.forEach((b, i) => {
    const reasons: KeepReason[] = [];
    const nth = seen[b.type]++;
    if (b.type === 'FULL' && retention.keepLastFull != null && nth < retention.keepLastFull) reasons.push('LAST_FULL');
    if (b.type === 'INCREMENTAL' && retention.keepLastIncremental != null && nth < retention.keepLastIncremental) reasons.push('LAST_INCREMENTAL');
    if (cutoff !== null && b.completedAt.getTime() > cutoff) reasons.push('WITHIN_DAYS');
    if (i === 0 && retention.keepLastWhileInstanceExists && opts.instanceExists) reasons.push('LAST_WHILE_INSTANCE_EXISTS');
    if (reasons.length) keep.push({ id: b.id, reasons });
    else del.push(b.id);
  });
  return { keep, delete: del };
}
