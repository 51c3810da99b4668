// Retention rules (src/engine/retention.ts): examples for each rule, then properties over
// arbitrary backup histories and retentions.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Retention } from '../../src/db/entities/index.ts';
import { planRetention, RetentionError, type RetentionCandidate } from '../../src/engine/retention.ts';

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
