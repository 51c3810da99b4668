// Size reports over any [from, to) from the usage ledger, grouped by any dimensions and filtered.
//
// Every figure is a difference (or a linear combination) of cumulative values at `from` and
// `to`, and a cumulative value at an instant T is "the series' last daily row before T's day"
// plus "T's day's events before T" (read from the intervals). So a report reads about two rollup
// rows per series plus two days of events, whatever the range length. For byte-time:
//   ∫[from,to) stored(t) dt = to·S(to) − from·S(from) − (W(to) − W(from))
// where S(T) = Σ stored deltas before T and W(T) = Σ delta × event time before T.
import type { EntityManager } from '@mikro-orm/postgresql';
import {
  filterConditions, groupColumns, keysOf, validateGroupBy, validateRange, withNames,
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

/** The report's SQL: one row per group with `k<i>`/`n<i>` keys and names, the figures and `value`. */
export function sizeReportSql(input: SizeReportInput, scope: ReportScope): Sql {
  validateRange(input.from, input.to);
  validateGroupBy(input.groupBy);
  const where = filterConditions('s', input.filter, scope);
  const point = (t: Date) => [t.toISOString(), String(t.getTime()), utcDay(t), `${utcDay(t)}T00:00:00.000Z`];
  const value = measureColumn[input.measure];
  const nonZero = 'stored <> 0 or stored_added <> 0 or front_end <> 0 or transferred <> 0 or byte_ms <> 0 or backups <> 0';
  const inner = `
    with s as (select * from usage_series s where ${where.sql}),
    p (k, t, t_ms, day, day_start) as (values
      (0, ?::timestamptz, ?::numeric, ?::date, ?::timestamptz),
      (1, ?::timestamptz, ?::numeric, ?::date, ?::timestamptz)),
    pts as (
      select s.id as series_id, p.k, p.t_ms, d.stored_cum as stored, d.stored_ms_cum as stored_ms, d.stored_added_cum as stored_added,
             d.front_end_added_cum as front_end, d.transferred_cum as transferred, d.backups_cum as backups
      from s cross join p
      join lateral (select * from usage_daily d where d.series_id = s.id and d.day < p.day order by d.day desc limit 1) d on true
      union all
      select i.series_id, p.k, p.t_ms, i.stored_bytes, i.stored_bytes::numeric * floor(extract(epoch from i.completed_at) * 1000),
             i.stored_bytes, i.front_end_bytes, i.transferred_bytes, 1
      from p join usage_interval i on i.completed_at >= p.day_start and i.completed_at < p.t
      where i.series_id in (select id from s)
      union all
      select i.series_id, p.k, p.t_ms, -i.stored_bytes, -i.stored_bytes::numeric * floor(extract(epoch from i.deleted_at) * 1000), 0, 0, 0, 0
      from p join usage_interval i on i.deleted_at >= p.day_start and i.deleted_at < p.t
      where i.series_id in (select id from s)
    ),
    per_series as (
      select series_id,
        sum(case when k = 1 then stored else 0 end) as stored,
        sum(case when k = 1 then stored_added else -stored_added end) as stored_added,
        sum(case when k = 1 then front_end else -front_end end) as front_end,
        sum(case when k = 1 then transferred else -transferred end) as transferred,
        sum(case when k = 1 then backups else -backups end) as backups,
        sum(case when k = 1 then t_ms * stored - stored_ms else stored_ms - t_ms * stored end) as byte_ms
      from pts group by series_id
    ),
    grouped as (
      select ${groupColumns('s', input.groupBy)},
        sum(stored) as stored, sum(stored_added) as stored_added, sum(front_end) as front_end,
        sum(transferred) as transferred, sum(backups) as backups, sum(byte_ms) as byte_ms
      from per_series ps join s on s.id = ps.series_id
      group by ${input.groupBy.map((_d, i) => `k${i}`).join(', ')}
    )
    select ${input.groupBy.map((_d, i) => `k${i}`).join(', ')}, stored, stored_added, front_end, transferred, backups,
      div(byte_ms + 1800000, 3600000) as byte_hours
    from grouped where ${nonZero}`;
  const ordered = withNames(
    `select x.*, x.${value} as value from (${inner}) x`,
    input.groupBy,
    `g.value desc, ${input.groupBy.map((_d, i) => `g.k${i}`).join(', ')}`,
  );
  return { sql: ordered, params: [...where.params, ...point(input.from), ...point(input.to)] };
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
  const q = sizeReportSql(input, scope);
  const raw = await em.execute<Record<string, unknown>[]>(q.sql, q.params);
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
