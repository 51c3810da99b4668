// `auditEvents`: the audit trail (src/engine/audit-trail.ts), newest first. ADMIN reads every
// event; a TENANT the events of its own projects (not system-wide ones, not other projects');
// OPERATOR and BILLING none (src/auth/policy.ts, `audit:read`).
import { encodeGlobalID } from '@pothos/plugin-relay';
import { GraphQLError } from 'graphql';
import { AuditEvent, type Role } from '../db/entities/index.ts';
import { auditConditions, type AuditFilter } from '../engine/audit-trail.ts';
import { readScope } from './access.ts';
import { builder } from './builder.ts';
import { connectionComplexity, keysetConnection, namedConnection } from './connections.ts';
import type { Context } from './context.ts';
import { parseGlobalId } from './node.ts';
import { RoleEnum } from './service-accounts.ts';

const NOTHING = '00000000-0000-0000-0000-000000000000';

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
    targetIds: t.idList({ description: 'Global IDs of the objects concerned', resolve: (e) => e.targetIds }),
    result: t.exposeString('result', { description: '`OK`, or the error code (`FORBIDDEN`, `NOT_FOUND`, `FAILED`…)' }),
    message: t.exposeString('message', { nullable: true }),
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
      resolve: (_root, args, ctx: Context) =>
        keysetConnection(ctx, AuditEvent, { $and: [readScope(ctx, 'AuditEvent') ?? { id: null }, ...auditConditions(auditFilter(args.filter))] }, args, { newestFirst: true }),
    },
    ...namedConnection('AuditEvent'),
  ),
);
