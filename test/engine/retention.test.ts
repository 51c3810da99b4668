// Retention rules (src/engine/retention.ts): examples for each rule, then properties over
// arbitrary backup histories and retentions.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Retention } from '../../src/db/entities/index.ts';
import { planRetention, RetentionError, type RetentionCandidate, type RetentionRules } from '../../src/engine/retention.ts';

const NOW = new Date('2026-11-27T12:00:00Z');
const DAY = 86_400_000;
const at = (daysAgo: number) => new Date(NOW.getTime() - daysAgo * DAY);
const b = (id: string, type: 'FULL' | 'INCREMENTAL', daysAgo: number): RetentionCandidate => ({ id, type, completedAt: at(daysAgo) });

// A week of nightly backups, a full every 3 days: f9 i8 i7 f6 i5 i4 f3 i2 i1 f0 (days ago).
const week = [9, 8, 7, 6, 5, 4, 3, 2, 1, 0].map((d) => b(`${d % 3 === 0 ? 'f' : 'i'}${d}`, d % 3 === 0 ? 'FULL' : 'INCREMENTAL', d));
const plan = (r: Retention, instanceExists = true, backups = week) => planRetention(backups, r, { now: NOW, instanceExists });

describe('retention rules', () => {
  it('keeps everything when no rule is set', () => {
    expect(plan({}).delete).toEqual([]);
    expect(plan({ keepLastWhileInstanceExists: false }).delete).toEqual([]);
  });

  it('keeps the N newest of each type; older fulls go although newer incrementals descend from them', () => {
    const p = plan({ keepLastFull: 2, keepLastIncremental: 3 });
    expect(p.keep.map((k) => k.id)).toEqual(['f0', 'i1', 'i2', 'f3', 'i4']);
    expect(p.delete).toEqual(['i5', 'f6', 'i7', 'i8', 'f9']);
  });

  it('an unset count keeps nothing of its type by itself', () => {
    expect(plan({ keepLastFull: 1 }).keep.map((k) => k.id)).toEqual(['f0']);
    expect(plan({ keepLastIncremental: 0 }).delete).toHaveLength(10);
  });

  it('keeps backups newer than keepDays', () => {
    const p = plan({ keepDays: 3 });
    expect(p.keep.map((k) => k.id)).toEqual(['f0', 'i1', 'i2']); // exactly 3 days old is not newer
    expect(p.keep[0]!.reasons).toEqual(['WITHIN_DAYS']);
  });

  it('keeps the newest backup while the instance exists, and lets it go once the instance is gone', () => {
    const old = [b('a', 'FULL', 40), b('b', 'INCREMENTAL', 30)];
    expect(plan({ keepDays: 7, keepLastWhileInstanceExists: true }, true, old)).toEqual({ keep: [{ id: 'b', reasons: ['LAST_WHILE_INSTANCE_EXISTS'] }], delete: ['a'] });
    expect(plan({ keepDays: 7, keepLastWhileInstanceExists: true }, false, old).delete).toEqual(['b', 'a']);
  });

  it('refuses counts and days that are not whole numbers ≥ 0', () => {
    expect(() => plan({ keepLastFull: -1 })).toThrow(RetentionError);
    expect(() => plan({ keepDays: 1.5 })).toThrow(/keepDays/);
    expect(() => plan({ keepHourly: -2 } as Retention)).toThrow(/keepHourly/);
  });
});

describe("operators' rules (repo prune)", () => {
  const t = (id: string, iso: string): RetentionCandidate => ({ id, type: 'FULL', completedAt: new Date(iso) });
  // Two backups a day on some days; a Sunday/Monday pair straddles an ISO week boundary.
  const history = [
    t('nov27b', '2026-11-27T18:00:00Z'),
    t('nov27a', '2026-11-27T06:00:00Z'),
    t('nov26', '2026-11-26T06:00:00Z'),
    t('nov23', '2026-11-23T06:00:00Z'), // Monday, week 48
    t('nov22', '2026-11-22T23:00:00Z'), // Sunday, week 47
    t('oct15', '2026-10-15T06:00:00Z'),
    t('dec2025', '2025-12-31T23:30:00Z'),
    t('jan2025', '2025-01-02T00:00:00Z'),
  ];
  const keepOf = (r: RetentionRules) => planRetention(history, r, { now: NOW, instanceExists: true }).keep.map((k) => k.id);

  it('keep-last keeps the N newest whatever their type', () => {
    expect(keepOf({ keepLast: 2 })).toEqual(['nov27b', 'nov27a']);
  });

  it('calendar rules keep the newest backup of each of the N latest UTC hours, days, ISO weeks, months and years', () => {
    expect(keepOf({ keepHourly: 2 })).toEqual(['nov27b', 'nov27a']);
    expect(keepOf({ keepDaily: 3 })).toEqual(['nov27b', 'nov26', 'nov23']);
    expect(keepOf({ keepWeekly: 2 })).toEqual(['nov27b', 'nov22']);
    expect(keepOf({ keepMonthly: 3 })).toEqual(['nov27b', 'oct15', 'dec2025']);
    expect(keepOf({ keepYearly: 5 })).toEqual(['nov27b', 'dec2025']);
  });

  it('keep-within keeps what is younger than the duration; rules combine as a union with reasons', () => {
    expect(keepOf({ keepWithinMs: 6 * DAY })).toEqual(['nov27b', 'nov27a', 'nov26', 'nov23', 'nov22']);
    const p = planRetention(history, { keepLast: 1, keepMonthly: 2, keepYearly: 2 }, { now: NOW, instanceExists: true });
    expect(p.keep).toEqual([
      { id: 'nov27b', reasons: ['LAST', 'MONTHLY', 'YEARLY'] },
      { id: 'oct15', reasons: ['MONTHLY'] },
      { id: 'dec2025', reasons: ['YEARLY'] },
    ]);
    expect(p.delete).toEqual(['nov27a', 'nov26', 'nov23', 'nov22', 'jan2025']);
  });
});

const backupsArb = fc
  .array(fc.record({ type: fc.constantFrom('FULL' as const, 'INCREMENTAL' as const), minutesAgo: fc.integer({ min: -60, max: 60 * 24 * 60 }) }), { maxLength: 40 })
  .map((xs) => xs.map((x, i) => ({ id: `b${String(i).padStart(2, '0')}`, type: x.type, completedAt: new Date(NOW.getTime() - x.minutesAgo * 60_000) })));
const retentionArb = fc.record(
  { keepLastFull: fc.nat(6), keepLastIncremental: fc.nat(10), keepDays: fc.nat(45), keepLastWhileInstanceExists: fc.boolean() },
  { requiredKeys: [] },
);
const newestFirst = (xs: RetentionCandidate[]) => [...xs].sort((a, b) => b.completedAt.getTime() - a.completedAt.getTime() || b.id.localeCompare(a.id));

describe('retention properties', () => {
  it('partitions the input: every backup is kept or deleted, never both', () => {
    fc.assert(
      fc.property(backupsArb, retentionArb, fc.boolean(), (backups, r, exists) => {
        const p = planRetention(backups, r, { now: NOW, instanceExists: exists });
        const kept = p.keep.map((k) => k.id);
        expect(new Set([...kept, ...p.delete]).size).toBe(backups.length);
        expect(kept.length + p.delete.length).toBe(backups.length);
      }),
    );
  });

  it('never deletes the newest backup of an existing instance when keepLastWhileInstanceExists', () => {
    fc.assert(
      fc.property(backupsArb.filter((b) => b.length > 0), retentionArb, (backups, r) => {
        const p = planRetention(backups, { ...r, keepLastWhileInstanceExists: true }, { now: NOW, instanceExists: true });
        expect(p.delete).not.toContain(newestFirst(backups)[0]!.id);
      }),
    );
  });

  it('keeps the N newest of each type that a count names', () => {
    fc.assert(
      fc.property(backupsArb, retentionArb, fc.boolean(), (backups, r, exists) => {
        const p = planRetention(backups, r, { now: NOW, instanceExists: exists });
        const kept = new Set(p.keep.map((k) => k.id));
        const fulls = newestFirst(backups.filter((b) => b.type === 'FULL'));
        const incs = newestFirst(backups.filter((b) => b.type === 'INCREMENTAL'));
        if (r.keepLastFull != null) for (const b of fulls.slice(0, r.keepLastFull)) expect(kept.has(b.id)).toBe(true);
        if (r.keepLastIncremental != null) for (const b of incs.slice(0, r.keepLastIncremental)) expect(kept.has(b.id)).toBe(true);
      }),
    );
  });

  it('deletes nothing newer than keepDays', () => {
    fc.assert(
      fc.property(backupsArb, retentionArb.filter((r) => r.keepDays != null), fc.boolean(), (backups, r, exists) => {
        const p = planRetention(backups, r, { now: NOW, instanceExists: exists });
        const cutoff = NOW.getTime() - r.keepDays! * DAY;
        for (const id of p.delete) expect(backups.find((b) => b.id === id)!.completedAt.getTime()).toBeLessThanOrEqual(cutoff);
      }),
    );
  });

  it('deletes every backup no rule keeps (retention is not looser than written), and ignores input order', () => {
    fc.assert(
      fc.property(backupsArb, retentionArb, fc.boolean(), (backups, r, exists) => {
        const p = planRetention(backups, r, { now: NOW, instanceExists: exists });
        const anyRule = r.keepLastFull != null || r.keepLastIncremental != null || r.keepDays != null || r.keepLastWhileInstanceExists === true;
        const sorted = newestFirst(backups);
        const rank = (b: RetentionCandidate) => sorted.filter((x) => x.type === b.type).indexOf(b);
        for (const b of backups) {
          const keptByRule =
            !anyRule ||
            (b.type === 'FULL' && r.keepLastFull != null && rank(b) < r.keepLastFull) ||
            (b.type === 'INCREMENTAL' && r.keepLastIncremental != null && rank(b) < r.keepLastIncremental) ||
            (r.keepDays != null && b.completedAt.getTime() > NOW.getTime() - r.keepDays * DAY) ||
            (r.keepLastWhileInstanceExists === true && exists && sorted[0] === b);
          expect(p.delete.includes(b.id), b.id).toBe(!keptByRule);
        }
        expect(planRetention([...backups].reverse(), r, { now: NOW, instanceExists: exists })).toEqual(p);
      }),
    );
  });
});
