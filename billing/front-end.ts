// Front-end capacity: per instance, the front-end (logical) size of its last full backup held
// at `to` — incrementals excluded, since capacity cannot exceed the instance itself; a deleted
// full gives way to the older full still held. Summed by group. Filters choose which backups
// count (so with an excluded destination, the last full elsewhere counts).
import type { EntityManager } from '@mikro-orm/postgresql';
import {
  filterConditions, groupColumns, keysOf, runReport, validateGroupBy, withNames,
  ReportInputError, type Dimension, type ReportFilter, type ReportKey, type ReportScope, type Sql,
} from './report-common.ts';

export type FrontEndCapacityInput = { to: Date; groupBy: Dimension[]; filter?: ReportFilter };
export type FrontEndRow = { keys: ReportKey[]; value: bigint; instances: number };
export type FrontEndReport = { to: Date; groupBy: Dimension[]; rows: FrontEndRow[]; total: bigint; instances: number };

/** Per instance, its last full backup held at `to` (a backup held at T: completedAt < T ≤ deletedAt, or not deleted). */
export function lastFullSql(to: Date, filter: ReportFilter | undefined, scope: ReportScope): Sql {
  if (Number.isNaN(to.getTime())) throw ReportInputError.invalidDate('to');
  const seriesWhere = filterConditions('s', filter, scope);
  const intervalWhere = filterConditions('i', filter, scope);
  const sql = `
    select f.* from (select distinct s.instance_id from usage_series s where ${seriesWhere.sql}) inst
    cross join lateral (
      select i.backup_id, i.cloud_id, i.project_id, i.instance_id, i.zone_id, i.policy_id, i.destination_id, i.front_end_bytes, i.started_hour, i.completed_at
      from usage_interval i
      where i.instance_id = inst.instance_id and i.backup_type = 'FULL' and i.completed_at < ?::timestamptz
        and (i.deleted_at is null or i.deleted_at >= ?::timestamptz) and ${intervalWhere.sql}
      order by i.completed_at desc limit 1
    ) f`;
  return { sql, params: [...seriesWhere.params, to.toISOString(), to.toISOString(), ...intervalWhere.params] };
}

export function frontEndCapacitySql(input: FrontEndCapacityInput, scope: ReportScope): Sql {
  validateGroupBy(input.groupBy);
  const last = lastFullSql(input.to, input.filter, scope);
  const keys = input.groupBy.map((_d, i) => `k${i}`).join(', ');
  const inner = `select ${groupColumns('f', input.groupBy)}, sum(f.front_end_bytes) as value, count(*) as instances
    from (${last.sql}) f group by ${keys}`;
  return { sql: withNames(inner, input.groupBy, `g.value desc, ${input.groupBy.map((_d, i) => `g.k${i}`).join(', ')}`), params: last.params };
}

export async function frontEndCapacity(em: EntityManager, input: FrontEndCapacityInput, scope: ReportScope): Promise<FrontEndReport> {
  const q = frontEndCapacitySql(input, scope);
  const raw = await runReport(em, q);
  const rows = raw.map((r) => ({ keys: keysOf(r, input.groupBy), value: BigInt(r.value as string), instances: Number(r.instances) }));
  return {
    to: input.to,
    groupBy: input.groupBy,
    rows,
    total: rows.reduce((a, r) => a + r.value, 0n),
    instances: rows.reduce((a, r) => a + r.instances, 0),
  };
}
