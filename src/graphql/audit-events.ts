// `auditEvents`: the audit trail (src/engine/audit-trail.ts), newest first. ADMIN reads every
// event; a TENANT the events of its own projects (not system-wide ones, not other projects');
// OPERATOR and BILLING none (src/auth/policy.ts, `audit:read`).
import { encodeGlobalID } from '@pothos/plugin-relay';
import { GraphQLError } from 'graphql';
import * as E from '../db/entities/index.ts';
import { AuditEvent, type Role } from '../db/entities/index.ts';
import { auditConditions, type AuditFilter } from '../engine/audit-trail.ts';
import { readAction, readScope, type ReadableEntity } from './access.ts';
import { builder } from './builder.ts';
import { connectionComplexity, keysetConnection, namedConnection } from './connections.ts';
import type { Context } from './context.ts';
import { parseGlobalId, scopedLoad } from './node.ts';
import { RoleEnum } from './service-accounts.ts';

const NOTHING = '00000000-0000-0000-0000-000000000000';

/** Global IDs quoted in messages (`no Instance with id "…"`). */
const QUOTED_ID = /[A-Za-z0-9+/]{16,}={0,2}/g;

/**
 * What a TENANT may see of an event of its project: the target IDs it can read, and the
 * message only when it names nothing else (an ADMIN may have named another project's object
 * in the same call). The set of visible global IDs; null: everything (every project's caller).
 */
export async function tenantVisibility(ctx: Context, events: readonly { targetIds: string[]; message?: string | null }[]): Promise<Set<string> | null> {
  if (!ctx.viewer || ctx.viewer.projectIds === null) return null;
  const named = new Set(events.flatMap((e) => [...e.targetIds, ...(e.message?.match(QUOTED_ID) ?? [])]));
  const byType = new Map<ReadableEntity, string[]>();
  for (const id of named) {
    const gid = parseGlobalId(id);
    if (gid && gid.typename in readAction) byType.set(gid.typename as ReadableEntity, [...(byType.get(gid.typename as ReadableEntity) ?? []), gid.id]);
  }
  const visible = new Set<string>();
  for (const [typename, ids] of byType) {
    const entity = (E as unknown as Record<string, typeof AuditEvent>)[typename]!;
    for (const row of await scopedLoad(entity, typename)(ids, ctx)) visible.add(encodeGlobalID(typename, row.id));
  }
  return visible;
}

export function visibleTargets(targetIds: string[], visible: Set<string> | null): string[] {
  return visible ? targetIds.filter((id) => visible.has(id)) : targetIds;
}

/** The message, unless it may describe an object the caller cannot see (by name or ID): then null. */
export function visibleMessage(event: { targetIds: string[]; message?: string | null }, visible: Set<string> | null): string | null {
  const message = event.message ?? null;
  if (!message || !visible) return message;
  if (event.targetIds.some((id) => !visible.has(id))) return null;
  return message.replace(QUOTED_ID, (id) => (parseGlobalId(id) && !visible.has(id) ? '[hidden]' : id));
}

/** Per operation: what the caller may see of the page's events (set by `auditEvents`). */
const pageVisibility = new WeakMap<Context, Set<string> | null>();

const AuditEventRef = builder.objectRef<AuditEvent>('AuditEvent').implement({
  description: 'One mutation (each root field of a mutation operation) or one task outcome',
  fields: (t) => ({
    id: t.id({ resolve: (e) => encodeGlobalID('AuditEvent', e.id) }),
    at: t.field({ type: 'DateTime', resolve: (e) => e.at }),
    actorId: t.id({ nullable: true, description: 'The service account; null for the system and for callers without a valid token', resolve: (e) => (e.actorId ? encodeGlobalID('ServiceAccount', e.actorId) : null) }),
    actorName: t.exposeString('actorName', { description: 'The account name, `system` or `anonymous`' }),
    actorRole: t.field({ type: RoleEnum, nullable: true, resolve: (e) => (e.actorRole as Role | undefined) ?? null }),
    action: t.exposeString('action', { description: 'The mutation field, or `task.<TYPE>.<STATE>` for a task outcome' }),
    projectId: t.id({ nullable: true, description: 'The project concerned (it may no longer exist)', resolve: (e) => (e.projectId ? encodeGlobalID('Project', e.projectId) : null) }),
    targetIds: t.idList({ description: 'Global IDs of the objects concerned (those the caller may see)', resolve: (e, _a, ctx) => visibleTargets(e.targetIds, pageVisibility.get(ctx) ?? null) }),
    result: t.exposeString('result', { description: '`OK`, or the error code (`FORBIDDEN`, `NOT_FOUND`, `FAILED`…)' }),
    message: t.string({ nullable: true, resolve: (e, _a, ctx) => visibleMessage(e, pageVisibility.get(ctx) ?? null) }),
    requestId: t.exposeString('requestId', { nullable: true }),
  }),
});

const AuditEventFilter = builder.inputType('AuditEventFilter', {
  fields: (t) => ({
    from: t.field({ type: 'DateTime', description: 'At or after' }),
    to: t.field({ type: 'DateTime', description: 'Before' }),
    projectId: t.id(),
    actorId: t.id({ description: 'A ServiceAccount ID' }),
    actionPrefix: t.string({ description: 'e.g. `task.` for task outcomes, `serviceAccount` for account changes' }),
    result: t.string({ description: '`OK` or an error code' }),
  }),
});

type FilterArgs = { from?: Date | null; to?: Date | null; projectId?: string | number | null; actorId?: string | number | null; actionPrefix?: string | null; result?: string | null };

/** A global ID filter; an unknown or wrong-type ID matches nothing. */
function dbId(value: string | number | null | undefined, typename: string): string | undefined {
  if (value == null) return undefined;
  return parseGlobalId(String(value), typename)?.id ?? NOTHING;
}

export function auditFilter(f: FilterArgs | null | undefined): AuditFilter {
  if (!f) return {};
  for (const [name, value, max] of [['actionPrefix', f.actionPrefix, 100], ['result', f.result, 64]] as const) {
    if (value && value.length > max) throw new GraphQLError(`${name}: at most ${max} characters`, { extensions: { code: 'BAD_USER_INPUT' } });
  }
  return {
    from: f.from ?? undefined,
    to: f.to ?? undefined,
    projectId: dbId(f.projectId, 'Project'),
    actorId: dbId(f.actorId, 'ServiceAccount'),
    actionPrefix: f.actionPrefix ?? undefined,
    result: f.result ?? undefined,
  };
}

builder.queryField('auditEvents', (t) =>
  t.connection(
    {
      type: AuditEventRef,
      description: 'The audit trail, newest first: ADMIN sees every event, a TENANT those of its projects',
      authScopes: { can: 'audit:read' },
      complexity: connectionComplexity,
      args: { filter: t.arg({ type: AuditEventFilter }) },
      resolve: async (_root, args, ctx: Context) => {
        const page = await keysetConnection(ctx, AuditEvent, { $and: [readScope(ctx, 'AuditEvent') ?? { id: null }, ...auditConditions(auditFilter(args.filter))] }, args, { newestFirst: true });
        pageVisibility.set(ctx, await tenantVisibility(ctx, page.edges.map((e) => e.node)));
        return page;
      },
    },
    ...namedConnection('AuditEvent'),
  ),
);
