// Spreading the load: the instances of one scheduled run start at evenly spaced times over the
// first part of the start window instead of all at its first minute. Higher priority starts
// earlier; within a priority, a stable hash of the ID decides, so plans do not reshuffle daily.
import { createHash } from 'node:crypto';

export type Spreadable = { id: string; priority: number };

/** Share of the window used for first starts; the rest is slack for slow starts and retries. */
export const SPREAD_SHARE = 0.8;

function stableKey(id: string): string {
  return createHash('sha256').update(id).digest('hex');
}

export function spreadStarts<T extends Spreadable>(items: T[], windowStart: Date, windowEnd: Date): { item: T; startAt: Date }[] {
  const ordered = [...items].sort((a, b) => b.priority - a.priority || (stableKey(a.id) < stableKey(b.id) ? -1 : 1));
  const span = Math.max(0, windowEnd.getTime() - windowStart.getTime()) * SPREAD_SHARE;
  const step = ordered.length > 0 ? span / ordered.length : 0;
  return ordered.map((item, i) => ({ item, startAt: new Date(windowStart.getTime() + Math.floor(i * step)) }));
}

/** The most jobs running at once if each runs `durationMs` from its start. */
export function peakConcurrency(starts: Date[], durationMs: number): number {
  const events = starts.flatMap((s) => [
    { t: s.getTime(), d: 1 },
    { t: s.getTime() + durationMs, d: -1 },
  ]);
  events.sort((a, b) => a.t - b.t || a.d - b.d);
  let now = 0;
  let peak = 0;
  for (const e of events) {
    now += e.d;
    peak = Math.max(peak, now);
  }
  return peak;
}
