// CSV export of the billing reports over HTTP, streamed from a PostgreSQL server-side cursor
// (batched FETCH), so a long report never sits in memory on either side:
//   GET /reports/size.csv?from=…&to=…&groupBy=PROJECT,INSTANCE&measure=BYTE_HOURS[&filters]
//   GET /reports/front-end.csv?[to=…]&groupBy=…[&filters]
//   GET /reports/usage.csv?from=…&to=…[&filters]          (one line per backup)
// Filters: projectId, instanceId, policyId, destinationId, zoneId, excludeDestinationId (each
// repeatable or comma-separated; global or database IDs). Auth as the GraphQL reports:
// `Authorization: Bearer …`; BILLING and ADMIN see every project, a TENANT its own.
import { decodeGlobalID, encodeGlobalID } from '@pothos/plugin-relay';
import type { Knex } from '@mikro-orm/knex';
import type { EntityManager } from '@mikro-orm/postgresql';
import { frontEndCapacitySql } from '../../billing/front-end.ts';
import { Dimensions, ReportInputError, type Dimension, type ReportFilter, type ReportScope, type Sql } from '../../billing/report-common.ts';
import { prepareSizeReport, SizeMeasures, type SizeMeasure } from '../../billing/size-report.ts';
import { usageLineColumns, usageLinesSql } from '../../billing/usage-lines.ts';
import type { Viewer } from '../auth/viewer.ts';
import type { Orm } from '../db/orm.ts';
import type { Services } from '../services.ts';

const FETCH_ROWS = 2000;
const READER_ROLES = new Set(['ADMIN', 'BILLING', 'TENANT']);

const typenames: Record<Dimension, string> = {
  PROJECT: 'Project', INSTANCE: 'Instance', ZONE: 'AvailabilityZone', POLICY: 'Policy', DESTINATION: 'BackupDestination', CLOUD: 'Cloud',
};

const text = (status: number, body: string) => new Response(`${body}\n`, { status, headers: { 'content-type': 'text/plain; charset=utf-8' } });

/** One CSV field: quoted when needed; a leading = + - @ is defused so spreadsheets do not run it. */
export function csvField(v: unknown): string {
  if (v === null || v === undefined) return '';
  let s = v instanceof Date ? v.toISOString() : String(v);
  if (typeof v === 'string' && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\n\r]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

function list(url: URL, name: string): string[] {
  return url.searchParams.getAll(name).flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
}

function ids(url: URL, name: string, typename: string): string[] | undefined {
  const values = list(url, name);
  if (values.length === 0) return undefined;
  return values.map((v) => {
    if (/^[0-9a-f-]{36}$/i.test(v)) return v;
    try {
      const g = decodeGlobalID(v);
      if (g.typename === typename) return g.id;
    } catch {
      // fall through
    }
    throw new ReportInputError('INVALID_ID', `${name}: ${JSON.stringify(v)} is not a ${typename} ID`, [name]);
  });
}

function filterOf(url: URL): ReportFilter {
  return {
    projectIds: ids(url, 'projectId', 'Project'),
    instanceIds: ids(url, 'instanceId', 'Instance'),
    policyIds: ids(url, 'policyId', 'Policy'),
    destinationIds: ids(url, 'destinationId', 'BackupDestination'),
    zoneIds: ids(url, 'zoneId', 'AvailabilityZone'),
    excludeDestinationIds: ids(url, 'excludeDestinationId', 'BackupDestination'),
  };
}

function date(url: URL, name: string, fallback?: Date): Date {
  const v = url.searchParams.get(name);
  if (v === null && fallback) return fallback;
  const d = new Date(v ?? '');
  if (v === null || Number.isNaN(d.getTime())) throw ReportInputError.invalidDate(name);
  return d;
}

function groupBy(url: URL): Dimension[] {
  const values = list(url, 'groupBy');
  for (const v of values) {
    if (!(Dimensions as readonly string[]).includes(v)) throw new ReportInputError('INVALID_DIMENSION', `groupBy: unknown dimension ${JSON.stringify(v)}`, ['groupBy']);
  }
  return values as Dimension[];
}

export type Export = {
  header: string[];
  sql: Sql;
  line(row: Record<string, unknown>): unknown[];
  /** Called with each batch of rows before their lines (to look up what the lines need). */
  prepare?(rows: Record<string, unknown>[]): Promise<void>;
};

function groupedExport(dims: Dimension[], sql: Sql, figures: string[]): Export {
  return {
    header: [...dims.flatMap((d) => [`${d.toLowerCase()}_id`, `${d.toLowerCase()}_name`]), ...figures],
    sql,
    line: (r) => [...dims.flatMap((d, i) => [r[`k${i}`] ? encodeGlobalID(typenames[d], r[`k${i}`] as string) : null, r[`n${i}`]]), ...figures.map((f) => r[f])],
  };
}

async function exportFor(orm: Orm, url: URL, scope: ReportScope): Promise<Export | null> {
  const filter = filterOf(url);
  switch (url.pathname) {
    case '/reports/size.csv': {
      const measure = url.searchParams.get('measure') ?? 'STORED';
      if (!(SizeMeasures as readonly string[]).includes(measure)) throw new ReportInputError('INVALID_MEASURE', `measure: unknown ${JSON.stringify(measure)}`, ['measure']);
      const dims = groupBy(url);
      const sql = await prepareSizeReport(orm.em.fork() as EntityManager, { from: date(url, 'from'), to: date(url, 'to'), groupBy: dims, measure: measure as SizeMeasure, filter }, scope);
      return groupedExport(dims, sql, ['stored', 'stored_added', 'front_end', 'transferred', 'byte_hours', 'backups', 'value']);
    }
    case '/reports/front-end.csv': {
      const dims = groupBy(url);
      return groupedExport(dims, frontEndCapacitySql({ to: date(url, 'to', new Date()), groupBy: dims, filter }, scope), ['value', 'instances']);
    }
    case '/reports/usage.csv': {
      const sql = usageLinesSql({ from: date(url, 'from'), to: date(url, 'to'), filter }, scope);
      const global: Partial<Record<string, string>> = {
        backup_id: 'Backup', project_id: 'Project', instance_id: 'Instance', zone_id: 'AvailabilityZone', policy_id: 'Policy', destination_id: 'BackupDestination', cloud_id: 'Cloud',
      };
      return {
        header: [...usageLineColumns],
        sql,
        line: (r) => usageLineColumns.map((c) => (global[c] && r[c] ? encodeGlobalID(global[c]!, r[c] as string) : r[c])),
      };
    }
    default:
      return null;
  }
}

/** Rows of `sql` in batches from a server-side cursor, in a read-only transaction on a pooled connection. */
export async function* cursorRows(orm: Orm, sql: Sql, batch = FETCH_ROWS): AsyncGenerator<Record<string, unknown>[]> {
  const knex = orm.em.getConnection().getKnex() as Knex;
  const client = (await knex.client.acquireConnection()) as { query(q: string): Promise<{ rows: Record<string, unknown>[] }> };
  let open = false;
  try {
    await client.query('begin read only');
    open = true;
    await client.query('set local jit = off');
    await client.query(`declare report_rows no scroll cursor for ${orm.em.getPlatform().formatQuery(sql.sql, sql.params)}`);
    for (;;) {
      const { rows } = await client.query(`fetch ${batch} from report_rows`);
      if (rows.length === 0) break;
      yield rows;
    }
    await client.query('commit');
    open = false;
  } finally {
    // Also when the consumer stops early (client gone): end the transaction before the connection goes back.
    if (open) await client.query('rollback').catch(() => undefined);
    await knex.client.releaseConnection(client);
  }
}

export function csvStream(orm: Orm, exp: Export): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  const rows = cursorRows(orm, exp.sql);
  let headerSent = false;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (!headerSent) {
        headerSent = true;
        controller.enqueue(encoder.encode(`${exp.header.join(',')}\n`));
        return;
      }
      const next = await rows.next();
      if (next.done) controller.close();
      else {
        await exp.prepare?.(next.value);
        controller.enqueue(encoder.encode(next.value.map((r) => `${exp.line(r).map(csvField).join(',')}\n`).join('')));
      }
    },
    async cancel() {
      await rows.return(undefined);
    },
  });
}

/** `viewer`: the request's, resolved (and rate limited) by the route layer. */
export async function reportsCsvEndpoint(services: Services, request: Request, url: URL, viewer: Viewer | null): Promise<Response> {
  if (request.method !== 'GET') return text(405, 'method not allowed');
  if (!viewer) return text(401, 'authentication required');
  if (!READER_ROLES.has(viewer.role)) return text(403, 'not allowed');
  let exp: Export | null;
  try {
    exp = await exportFor(services.orm, url, { projectIds: viewer.projectIds });
  } catch (e) {
    if (e instanceof ReportInputError) return text(400, `${e.code}: ${e.message}`);
    throw e;
  }
  if (!exp) return text(404, 'no such report');
  const name = url.pathname.split('/').pop();
  return new Response(csvStream(services.orm, exp), {
    status: 200,
    headers: { 'content-type': 'text/csv; charset=utf-8', 'content-disposition': `attachment; filename="${name}"`, 'cache-control': 'no-store' },
  });
}
