// When a policy's schedules fire: planned run times in a range, each with the end of its start
// window. Times are wall-clock in the schedule's time zone (default UTC), so "02:00" stays
// 02:00 across DST changes.
import { DateTime } from 'luxon';
import type { Schedule } from '../../db/entities/index.ts';

export type PlannedRun = { at: Date; windowEnd: Date };

const HHMM = /^([01]\d|2[0-3]):([0-5]\d)$/;

/** Problems with a schedule, as messages naming the field; empty when valid. */
export function scheduleProblems(s: Schedule): { field: string; message: string }[] {
  const problems: { field: string; message: string }[] = [];
  const hasTimes = (s.timesOfDay?.length ?? 0) > 0;
  const hasInterval = s.intervalHours !== undefined && s.intervalHours !== null;
  if (hasTimes === hasInterval) problems.push({ field: 'timesOfDay', message: 'give either timesOfDay or intervalHours' });
  for (const t of s.timesOfDay ?? []) if (!HHMM.test(t)) problems.push({ field: 'timesOfDay', message: `${JSON.stringify(t)} is not a time HH:MM` });
  if (hasInterval && !(Number.isInteger(s.intervalHours) && s.intervalHours! >= 1 && s.intervalHours! <= 24)) {
    problems.push({ field: 'intervalHours', message: 'intervalHours must be a whole number from 1 to 24' });
  }
  if (s.betweenHours) {
    const { from, to } = s.betweenHours;
    if (![from, to].every((h) => Number.isInteger(h) && h >= 0 && h <= 24) || from === to) {
      problems.push({ field: 'betweenHours', message: 'betweenHours needs two different whole hours from 0 to 24' });
    }
  }
  for (const d of s.daysOfWeek ?? []) if (!(Number.isInteger(d) && d >= 1 && d <= 7)) problems.push({ field: 'daysOfWeek', message: `day ${d} is not 1 (Monday) … 7 (Sunday)` });
  if (!(Number.isInteger(s.windowMinutes) && s.windowMinutes >= 1 && s.windowMinutes <= 24 * 60)) {
    problems.push({ field: 'windowMinutes', message: 'windowMinutes must be a whole number from 1 to 1440' });
  }
  if (s.timeZone && !DateTime.now().setZone(s.timeZone).isValid) problems.push({ field: 'timeZone', message: `unknown time zone ${JSON.stringify(s.timeZone)}` });
  return problems;
}

/** Minutes after midnight at which the schedule fires on a qualifying day. */
function minutesOfDay(s: Schedule): number[] {
  if (s.timesOfDay?.length) {
    return s.timesOfDay.map((t) => {
      const [, h, m] = HHMM.exec(t)!;
      return Number(h) * 60 + Number(m);
    });
  }
  const from = s.betweenHours?.from ?? 0;
  let to = s.betweenHours?.to ?? 24;
  if (to <= from) to += 24; // e.g. 22 → 6 runs through the night
  const out: number[] = [];
  for (let h = from; h < to; h += s.intervalHours!) out.push(h * 60);
  return out;
}

/** Runs planned at `from <= at < to`, in time order. */
export function plannedRuns(s: Schedule, from: Date, to: Date): PlannedRun[] {
  const zone = s.timeZone ?? 'UTC';
  const minutes = minutesOfDay(s);
  const days = s.daysOfWeek?.length ? new Set(s.daysOfWeek) : null;
  const runs: PlannedRun[] = [];
  // Start a day early: an interval run planned yesterday evening may fall after midnight.
  let day = DateTime.fromJSDate(from, { zone }).startOf('day').minus({ days: 1 });
  const end = DateTime.fromJSDate(to, { zone });
  while (day <= end) {
    if (!days || days.has(day.weekday)) {
      for (const m of minutes) {
        // Wall-clock arithmetic (set, not add), so DST days keep their times; an ambiguous
        // time (clocks going back) resolves to its first occurrence.
        const at = day.plus({ days: Math.floor(m / 1440) }).set({ hour: Math.floor(m / 60) % 24, minute: m % 60 });
        const atDate = at.toJSDate();
        if (atDate >= from && atDate < to) runs.push({ at: atDate, windowEnd: at.plus({ minutes: s.windowMinutes }).toJSDate() });
      }
    }
    day = day.plus({ days: 1 });
  }
  return runs.sort((a, b) => a.at.getTime() - b.at.getTime());
}
