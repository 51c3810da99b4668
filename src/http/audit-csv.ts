// CSV export of the audit trail, streamed like the reports (src/http/reports-csv.ts), newest first:
//   GET /audit/events.csv?[from=…][&to=…][&projectId=…][&actorId=…][&actionPrefix=…][&result=…]
// Auth as `auditEvents`: `Authorization: Bearer …`; ADMIN every event, a TENANT its projects'.
import { encodeGlobalID } from '@pothos/plugin-relay';
import { can } from '../auth/policy.ts';
import type { Viewer } from '../auth/viewer.ts';
import { AuditEvent } from '../db/entities/index.ts';
import { systemFork } from '../db/orm.ts';
import { tenantCondition } from '../db/tenant-filter.ts';
import { auditConditions } from '../engine/audit-trail.ts';
import { auditFilter, tenantVisibility, visibleMessage, visibleTargets } from '../graphql/audit-events.ts';
import { createContext } from '../graphql/context.ts';
import type { Services } from '../services.ts';
import { csvStream, type Export } from './reports-csv.ts';

const text = (status: number, body: string) => new Response(`${body}\n`, { status, headers: { 'content-type': 'text/plain; charset=utf-8' } });

const columns = ['id', 'at', 'actor_id', 'actor_name', 'actor_role', 'action', 'project_id', 'target_ids', 'result', 'message', 'request_id'] as const;

function date(url: URL, name: string): Date | undefined | null {
  const v = url.searchParams.get(name);
  if (v === null) return undefined;
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? null : d;
}

/** `viewer`: the request's, resolved (and rate limited) by the route layer. */
export async function auditCsvEndpoint(services: Services, request: Request, url: URL, viewer: Viewer | null): Promise<Response> {
  if (url.pathname !== '/audit/events.csv') return text(404, 'not found');
  if (request.method !== 'GET') return text(405, 'method not allowed');
  if (!viewer) return text(401, 'authentication required');
  if (!can(viewer, 'audit:read')) return text(403, 'not allowed');
  const from = date(url, 'from');
  const to = date(url, 'to');
  if (from === null || to === null) return text(400, 'INVALID_DATE: from and to are ISO-8601 times');
  let filter;
  try {
    const q = (name: string) => url.searchParams.get(name);
    filter = auditFilter({ from, to, projectId: q('projectId'), actorId: q('actorId'), actionPrefix: q('actionPrefix'), result: q('result') });
  } catch (e) {
    return text(400, `BAD_USER_INPUT: ${(e as Error).message}`);
  }
  const qb = systemFork(services.orm)
    .createQueryBuilder(AuditEvent)
    .select('*')
    .where({ $and: [tenantCondition('AuditEvent', { projectIds: viewer.projectIds }), ...auditConditions(filter)] } as never)
    .orderBy({ id: 'desc' });
  // A TENANT sees of each event only the objects it may read (as in `auditEvents`).
  let visible: Set<string> | null = null;
  const exp: Export = {
    prepare: async (rows) => {
      visible = await tenantVisibility(createContext(services, viewer), rows.map((r) => ({ targetIds: r.target_ids as string[], message: r.message as string | null })));
    },
    header: [...columns],
    sql: (({ sql, bindings }) => ({ sql, params: [...bindings] }))(qb.getKnexQuery().toSQL()),
    line: (r) => [
      encodeGlobalID('AuditEvent', r.id as string),
      r.at,
      r.actor_id ? encodeGlobalID('ServiceAccount', r.actor_id as string) : null,
      r.actor_name,
      r.actor_role,
      r.action,
      r.project_id ? encodeGlobalID('Project', r.project_id as string) : null,
      visibleTargets(r.target_ids as string[], visible).join(' '),
      r.result,
      visibleMessage({ targetIds: r.target_ids as string[], message: r.message as string | null }, visible),
      r.request_id,
    ],
  };
  return new Response(csvStream(services.orm, exp), {
    status: 200,
    headers: { 'content-type': 'text/csv; charset=utf-8', 'content-disposition': 'attachment; filename="audit-events.csv"', 'cache-control': 'no-store' },
  });
}
