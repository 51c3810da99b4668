import { describe, expect, it } from 'vitest';
import { plannedRuns, scheduleProblems } from '../../src/engine/scheduler/schedule.ts';
import { peakConcurrency, spreadStarts } from '../../src/engine/scheduler/spread.ts';

const iso = (d: Date) => d.toISOString();

describe('schedules', () => {
  it('fires at times of day on chosen weekdays only', () => {
    // 2026-11-23 is a Monday.
    const runs = plannedRuns({ timesOfDay: ['02:00', '14:30'], daysOfWeek: [1, 3], windowMinutes: 60 }, new Date('2026-11-23T00:00:00Z'), new Date('2026-11-26T00:00:00Z'));
    expect(runs.map((r) => iso(r.at))).toEqual([
      '2026-11-23T02:00:00.000Z', '2026-11-23T14:30:00.000Z', '2026-11-25T02:00:00.000Z', '2026-11-25T14:30:00.000Z',
    ]);
    expect(iso(runs[0]!.windowEnd)).toBe('2026-11-23T03:00:00.000Z');
  });

  it('fires every N hours between hours, across midnight', () => {
    const runs = plannedRuns({ intervalHours: 3, betweenHours: { from: 22, to: 4 }, windowMinutes: 30 }, new Date('2026-11-23T12:00:00Z'), new Date('2026-11-24T12:00:00Z'));
    expect(runs.map((r) => iso(r.at))).toEqual(['2026-11-23T22:00:00.000Z', '2026-11-24T01:00:00.000Z']);
  });

  it('keeps wall-clock time across a DST change', () => {
    const runs = plannedRuns({ timesOfDay: ['02:30', '14:30'], timeZone: 'Europe/Warsaw', windowMinutes: 60 }, new Date('2026-10-24T00:00:00Z'), new Date('2026-10-27T00:00:00Z'));
    // CEST (UTC+2) until 25 Oct 01:00 UTC, then CET (UTC+1); 02:30 on the 25th happens twice
    // and the first occurrence is taken.
    expect(runs.map((r) => iso(r.at))).toEqual([
      '2026-10-24T00:30:00.000Z', '2026-10-24T12:30:00.000Z',
      '2026-10-25T00:30:00.000Z', '2026-10-25T13:30:00.000Z',
      '2026-10-26T01:30:00.000Z', '2026-10-26T13:30:00.000Z',
    ]);
  });

  it('names what is wrong with a schedule', () => {
    expect(scheduleProblems({ timesOfDay: ['25:00'], windowMinutes: 0 }).map((p) => p.field)).toEqual(['timesOfDay', 'windowMinutes']);
    expect(scheduleProblems({ windowMinutes: 10 }).map((p) => p.field)).toEqual(['timesOfDay']);
    expect(scheduleProblems({ intervalHours: 4, betweenHours: { from: 8, to: 20 }, windowMinutes: 60, timeZone: 'Mars/Olympus' }).map((p) => p.field)).toEqual(['timeZone']);
    expect(scheduleProblems({ timesOfDay: ['02:00'], daysOfWeek: [1, 7], windowMinutes: 120, timeZone: 'Europe/Warsaw' })).toEqual([]);
  });
});

describe('spreading a run over its window', () => {
  const items = Array.from({ length: 120 }, (_, i) => ({ id: `instance-${i}`, priority: i < 20 ? 90 : 50 }));
  const start = new Date('2026-11-27T02:00:00Z');
  const end = new Date('2026-11-27T04:00:00Z'); // a two-hour window
  const tenMinutes = 10 * 60_000;

  it('cuts the peak concurrency against starting everything at once', () => {
    const spread = spreadStarts(items, start, end);
    const naive = peakConcurrency(items.map(() => start), tenMinutes);
    const planned = peakConcurrency(spread.map((s) => s.startAt), tenMinutes);
    expect(naive).toBe(120);
    // 120 starts over 96 minutes, each 10 minutes long: about 13 at once.
    expect(planned).toBeLessThanOrEqual(13);
    expect(spread.every((s) => s.startAt >= start && s.startAt < end)).toBe(true);
  });

  it('starts higher priority first and plans the same way every day', () => {
    const a = spreadStarts(items, start, end);
    const b = spreadStarts([...items].reverse(), start, end);
    expect(a.slice(0, 20).every((s) => s.item.priority === 90)).toBe(true);
    expect(a.map((s) => s.item.id)).toEqual(b.map((s) => s.item.id));
  });
});
