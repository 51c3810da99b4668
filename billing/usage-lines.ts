// Per-backup usage lines over [from, to): every backup held at some time in the range or
// completed in it, with its figures and its byte-hours inside the range. The detail behind a
// size report, for export (streamed: a year of a large MSP is millions of lines).
import { filterConditions, validateRange, type ReportFilter, type ReportScope, type Sql } from './report-common.ts';

export type UsageLinesInput = { from: Date; to: Date; filter?: ReportFilter };

export const usageLineColumns = [
  'backup_id', 'project_id', 'project_name', 'instance_id', 'instance_name', 'zone_id', 'policy_id', 'destination_id', 'cloud_id',
  'backup_type', 'completed_at', 'deleted_at', 'stored_bytes', 'front_end_bytes', 'transferred_bytes', 'byte_hours_in_range',
] as const;

export function usageLinesSql(input: UsageLinesInput, scope: ReportScope): Sql {
  validateRange(input.from, input.to);
  const where = filterConditions('i', input.filter, scope);
  const from = input.from.toISOString();
  const to = input.to.toISOString();
  const sql = `
    select i.backup_id, i.project_id, p.name as project_name, i.instance_id, n.name as instance_name, i.zone_id, i.policy_id,
      i.destination_id, i.cloud_id, i.backup_type, i.completed_at, i.deleted_at, i.stored_bytes, i.front_end_bytes, i.transferred_bytes,
      div(i.stored_bytes::numeric * greatest(0,
            floor(extract(epoch from least(coalesce(i.deleted_at, ?::timestamptz), ?::timestamptz)) * 1000)
          - floor(extract(epoch from greatest(i.completed_at, ?::timestamptz)) * 1000)) + 1800000, 3600000) as byte_hours_in_range
    from usage_interval i
    left join project p on p.id = i.project_id
    left join instance n on n.id = i.instance_id
    where ${where.sql} and i.completed_at < ?::timestamptz
      and (i.deleted_at is null or i.deleted_at > ?::timestamptz or i.completed_at >= ?::timestamptz)
    order by i.completed_at, i.backup_id`;
  return { sql, params: [to, to, from, ...where.params, to, from, from] };
}
