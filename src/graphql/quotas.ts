// Quota rules and the projects they are assigned to (configuration: ADMIN and OPERATOR).
import { Quota, QuotaActions, QuotaMeasures, QuotaScopes } from '../db/entities/index.ts';
import { listRoles, readScope } from './access.ts';
import { builder } from './builder.ts';
import { connectionComplexity, keysetConnection, namedConnection } from './connections.ts';
import { registerNodeType, scopedLoad, visibleProjectIds } from './node.ts';
import { ProjectRef, QuotaRef } from './refs.ts';

registerNodeType('Quota');

export const QuotaActionEnum = builder.enumType('QuotaAction', { values: QuotaActions });
export const QuotaScopeEnum = builder.enumType('QuotaScope', { values: QuotaScopes });
export const QuotaMeasureEnum = builder.enumType('QuotaMeasure', { values: QuotaMeasures });

builder.loadableNode(QuotaRef, {
  description: 'At most `hardLimit` (refused) and `softLimit` (alerted) backups or restores per window',
  id: { resolve: (q) => q.id },
  load: scopedLoad(Quota, 'Quota'),
  sort: (q) => q.id,
  fields: (t) => ({
    name: t.exposeString('name'),
    action: t.field({ type: QuotaActionEnum, resolve: (q) => q.action }),
    scope: t.field({ type: QuotaScopeEnum, description: 'Counted per instance or per project', resolve: (q) => q.scope }),
    measure: t.field({ type: QuotaMeasureEnum, description: 'Count of operations, or bytes', resolve: (q) => q.measure }),
    windowSeconds: t.exposeInt('windowSeconds'),
    softLimit: t.field({ type: 'Bytes', nullable: true, resolve: (q) => q.softLimit ?? null }),
    hardLimit: t.field({ type: 'Bytes', nullable: true, resolve: (q) => q.hardLimit ?? null }),
    projects: t.field({
      type: [ProjectRef],
      description: 'Projects the quota is assigned to',
      resolve: (q, _a, ctx) => visibleProjectIds(ctx, 'quota_assignment', 'quota_id', q.id) as never,
    }),
    createdAt: t.field({ type: 'DateTime', resolve: (q) => q.createdAt }),
  }),
});

builder.queryField('quotas', (t) =>
  t.connection(
    {
      type: QuotaRef,
      authScopes: { role: listRoles('Quota') },
      complexity: connectionComplexity,
      resolve: (_root, args, ctx) => keysetConnection(ctx, Quota, readScope(ctx, 'Quota')!, args),
    },
    ...namedConnection('Quota'),
  ),
);
