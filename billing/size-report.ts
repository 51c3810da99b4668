// Size reports over any [from, to) from the usage ledger, grouped by any dimensions and filtered.
//
// Every figure is a difference (or a linear combination) of cumulative values at `from` and
// `to`, and a cumulative value at an instant T is "the weekly checkpoint before T's day" plus
// "the daily deltas since" plus "T's day's events before T" (from the intervals). So a report
// reads, per point, one week's checkpoint rows and at most a week of deltas and a day of events,
// whatever the range length. For byte-time:
//   ∫[from,to) stored(t) dt = to·S(to) − from·S(from) − (W(to) − W(from))
// where S(T) = Σ stored deltas before T and W(T) = Σ delta × event time before T.
import type { EntityManager } from '@mikro-orm/postgresql';
import {
  filterConditions, groupColumns, keysOf, runReport, validateGroupBy, validateRange, withNames,
  type Dimension, type ReportFilter, type ReportKey, type ReportScope, type Sql,
} from './report-common.ts';
import { utcDay } from './ledger.ts';

export const SizeMeasures = ['STORED', 'STORED_ADDED', 'FRONT_END', 'TRANSFERRED', 'BYTE_HOURS', 'BACKUPS'] as const;
/**
 * STORED: bytes held at the end of the range (backups with completedAt < to ≤ deletedAt, or not deleted);
 * STORED_ADDED: stored bytes of backups completed in [from, to);
 * FRONT_END: front-end (logical) bytes of backups completed in [from, to);
 * TRANSFERRED: bytes transferred by backups completed in [from, to) (the transfer-size view);
 * BYTE_HOURS: ∫ stored bytes dt over [from, to), in byte-hours (rounded half up per row);
 * BACKUPS: number of backups completed in [from, to).
 */
export type SizeMeasure = (typeof SizeMeasures)[number];

export type SizeReportInput = {
  from: Date;
  to: Date;
  groupBy: Dimension[];
  measure: SizeMeasure;
  filter?: ReportFilter;
};

export type SizeFigures = {
  stored: bigint;
  storedAdded: bigint;
  frontEnd: bigint;
  transferred: bigint;
  byteHours: bigint;
  backups: bigint;
};

export type SizeReportRow = { keys: ReportKey[]; value: bigint; figures: SizeFigures };
export type SizeReport = { from: Date; to: Date; groupBy: Dimension[]; measure: SizeMeasure; rows: SizeReportRow[]; total: bigint; totals: SizeFigures };

const measureColumn: Record<SizeMeasure, string> = {
  STORED: 'stored', STORED_ADDED: 'stored_added', FRONT_END: 'front_end', TRANSFERRED: 'transferred', BYTE_HOURS: 'byte_hours', BACKUPS: 'backups',
};

/** Monday of the latest materialised checkpoint on or before `t`'s day, or null (read deltas from the start). */
export async function checkpointWeek(em: EntityManager, t: Date): Promise<string | null> {
  const [row] = await em.execute<{ week: string | null }[]>(`select max(week)::text as week from usage_checkpoint_week where week <= ?::date`, [utcDay(t)]);
  return row?.week ?? null;
}

/** The report's SQL (see sizeReportSql), with the checkpoint weeks it reads looked up first. */
export async function prepareSizeReport(em: EntityManager, input: SizeReportInput, scope: ReportScope): Promise<Sql> {
  validateRange(input.from, input.to);
  validateGroupBy(input.groupBy);
  return sizeReportSql(input, scope, [await checkpointWeek(em, input.from), await checkpointWeek(em, input.to)]);
}

/**
 * The report's SQL: one row per group with `k<i>`/`n<i>` keys and names, the figures and
 * `value`. `weeks` are the checkpoint weeks for `from` and `to` (constants, so the planner sees
 * exactly which ranges it reads and joins the series by hash however many there are).
 */
export function sizeReportSql(input: SizeReportInput, scope: ReportScope, weeks: [string | null, string | null]): Sql {
  validateRange(input.from, input.to);
  validateGroupBy(input.groupBy);
  const value = measureColumn[input.measure];
  const keyList = input.groupBy.map((_d, i) => `k${i}`).join(', ');
  const branches: string[] = [];
  const params: unknown[] = [];
  // Rollup rows and intervals carry the dimension keys themselves: no join to usage_series.
  const rowsOf = (alias: string) => {
    const where = filterConditions(alias, input.filter, scope);
    params.push(...where.params);
    return where.sql;
  };
  // Cumulative values at each point k (0: from, 1: to): the checkpoint of the latest materialised
  // week before the point's day, plus the daily deltas since, plus the point's own day's events
  // before it. Every figure is (value at `to`) − (value at `from`), so a branch of point 0 yields
  // its flows negated; byte-time per row is ±(t·stored − stored_ms):
  //   ∫ stored dt = to·S(to) − W(to) − (from·S(from) − W(from)), in byte·ms.
  // One aggregate per figure (each numeric aggregate state costs per group; 10,000 groups here).
  [input.from, input.to].forEach((t, k) => {
    const day = utcDay(t);
    const week = weeks[k];
    const sign = k === 1 ? '' : '-';
    const tMs = `${String(t.getTime())}::numeric`;
    // stored: bytes held at `to` only; byte_ms: ±(t·stored − stored_ms); flows: ±value.
    const cols = (stored: string, storedMs: string, added: string, frontEnd: string, transferred: string, backups: string) =>
      `${k === 1 ? stored : '0::numeric'} as stored, ${sign}(${tMs} * ${stored} - ${storedMs}) as byte_ms, ${sign}${added} as stored_added,
        ${sign}${frontEnd} as front_end, ${sign}${transferred} as transferred, ${sign}${backups} as backups`;
    if (week) {
      params.push(week);
      branches.push(`select ${groupColumns('c', input.groupBy)}, ${cols('c.stored', 'c.stored_ms', 'c.stored_added', 'c.front_end_added', 'c.transferred', 'c.backups')}
        from usage_checkpoint c where c.week = ?::date and ${rowsOf('c')}`);
    }
    params.push(week ?? '-infinity', day);
    branches.push(`select ${groupColumns('d', input.groupBy)}, ${cols('d.stored', 'd.stored_ms', 'd.stored_added', 'd.front_end_added', 'd.transferred', 'd.backups')}
      from usage_daily d where d.day >= ?::date and d.day < ?::date and ${rowsOf('d')}`);
    params.push(`${day}T00:00:00.000Z`, t.toISOString());
    branches.push(`select ${groupColumns('i', input.groupBy)}, ${cols('i.stored_bytes::numeric', '(i.stored_bytes::numeric * floor(extract(epoch from i.completed_at) * 1000))',
      'i.stored_bytes::numeric', 'i.front_end_bytes::numeric', 'i.transferred_bytes::numeric', '1::numeric')}
      from usage_interval i where i.completed_at >= ?::timestamptz and i.completed_at < ?::timestamptz and ${rowsOf('i')}`);
    params.push(`${day}T00:00:00.000Z`, t.toISOString());
    branches.push(`select ${groupColumns('i', input.groupBy)}, ${cols('(-i.stored_bytes::numeric)', '(-i.stored_bytes::numeric * floor(extract(epoch from i.deleted_at) * 1000))',
      '0::numeric', '0::numeric', '0::numeric', '0::numeric')}
      from usage_interval i where i.deleted_at >= ?::timestamptz and i.deleted_at < ?::timestamptz and ${rowsOf('i')}`);
  });
  const inner = `
    with pts as (${branches.join('\n      union all\n      ')}),
    grouped as (
      select ${keyList}, sum(p.stored) as stored, sum(p.stored_added) as stored_added, sum(p.front_end) as front_end,
        sum(p.transferred) as transferred, sum(p.backups) as backups, sum(p.byte_ms) as byte_ms
      from pts p group by ${keyList}
    )
    select ${keyList}, stored, stored_added, front_end, transferred, backups, div(byte_ms + 1800000, 3600000) as byte_hours
    from grouped where stored <> 0 or stored_added <> 0 or front_end <> 0 or transferred <> 0 or byte_ms <> 0 or backups <> 0`;
  const ordered = withNames(
    `select x.*, x.${value} as value from (${inner}) x`,
    input.groupBy,
    `g.value desc, ${input.groupBy.map((_d, i) => `g.k${i}`).join(', ')}`,
  );
  return { sql: ordered, params };
}

const figuresOf = (r: Record<string, unknown>): SizeFigures => ({
  stored: BigInt(r.stored as string),
  storedAdded: BigInt(r.stored_added as string),
  frontEnd: BigInt(r.front_end as string),
  transferred: BigInt(r.transferred as string),
  byteHours: BigInt(r.byte_hours as string),
  backups: BigInt(r.backups as string),
});

export function zeroFigures(): SizeFigures {
  return { stored: 0n, storedAdded: 0n, frontEnd: 0n, transferred: 0n, byteHours: 0n, backups: 0n };
}

/** Totals are the sums of the rows (so a printed report adds up, byte-hours included). */
export async function sizeReport(em: EntityManager, input: SizeReportInput, scope: ReportScope): Promise<SizeReport> {
  const q = await prepareSizeReport(em, input, scope);
  const raw = await runReport(em, q);
  const totals = zeroFigures();
  const rows = raw.map((r) => {
    const figures = figuresOf(r);
    for (const k of Object.keys(totals) as (keyof SizeFigures)[]) totals[k] += figures[k];
    return { keys: keysOf(r, input.groupBy), value: BigInt(r.value as string), figures };
  });
  const total = rows.reduce((a, r) => a + r.value, 0n);
  return { from: input.from, to: input.to, groupBy: input.groupBy, measure: input.measure, rows, total, totals };
}

/** The transfer-size view: bytes moved by backups completed in the range. */
export function transferReport(em: EntityManager, input: Omit<SizeReportInput, 'measure'>, scope: ReportScope) {
  return sizeReport(em, { ...input, measure: 'TRANSFERRED' }, scope);
}
