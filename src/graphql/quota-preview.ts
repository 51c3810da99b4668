// quotaPreview: would this backup or restore be admitted right now, and if not, why — the same
// check startBackup/startRestore make, without locking or creating anything.
import { GraphQLError } from 'graphql';
import { Backup, Instance, Project, type Quota } from '../db/entities/index.ts';
import { quotaBytes } from '../engine/quotas/admission.ts';
import { checkQuotas, describeFinding, type QuotaFinding } from '../engine/quotas/quota-check.ts';
import { builder } from './builder.ts';
import { QuotaActionEnum } from './quotas.ts';
import { QuotaRef } from './refs.ts';
import { scopeWhere } from './tasks/loaders.ts';
import { idOf, notFound } from './tasks/payload.ts';
import { UserErrorException } from './user-errors.ts';

type FindingShape = QuotaFinding & { message: string };
type DecisionShape = { admitted: boolean; refusals: FindingShape[]; alerts: FindingShape[] };

const QuotaLevelEnum = builder.enumType('QuotaLevel', { values: ['HARD', 'SOFT'] as const });

const QuotaFindingRef = builder.objectRef<FindingShape>('QuotaFinding').implement({
  description: 'A quota limit this request would cross',
  fields: (t) => ({
    quota: t.field({ type: QuotaRef, resolve: (f) => f.quota as Quota }),
    level: t.field({ type: QuotaLevelEnum, resolve: (f) => f.level }),
    limit: t.field({ type: 'Bytes', resolve: (f) => f.limit }),
    used: t.field({ type: 'Bytes', description: 'Usage in the quota window before this request', resolve: (f) => f.used }),
    requested: t.field({ type: 'Bytes', description: 'What this request adds (1, or its bytes)', resolve: (f) => f.requested }),
    message: t.exposeString('message'),
  }),
});

const QuotaDecisionRef = builder.objectRef<DecisionShape>('QuotaDecision').implement({
  fields: (t) => ({
    admitted: t.exposeBoolean('admitted'),
    refusals: t.field({ type: [QuotaFindingRef], description: 'Hard limits that refuse the request', resolve: (d) => d.refusals }),
    alerts: t.field({ type: [QuotaFindingRef], description: 'Soft limits the request would cross', resolve: (d) => d.alerts }),
  }),
});

const QuotaPreviewInput = builder.inputType('QuotaPreviewInput', {
  fields: (t) => ({
    action: t.field({ type: QuotaActionEnum, required: true }),
    instanceId: t.id({ description: 'The instance to back up (BACKUP)' }),
    backupId: t.id({ description: 'The backup to restore (RESTORE)' }),
    projectId: t.id({ description: "Target project of a restore; defaults to the backup's" }),
  }),
});

builder.queryField('quotaPreview', (t) =>
  t.field({
    type: QuotaDecisionRef,
    description: 'Would this backup or restore be admitted now, and why not; creates nothing',
    authScopes: { can: 'quota:read' },
    args: { input: t.arg({ type: QuotaPreviewInput, required: true }) },
    resolve: async (_root, { input }, ctx) => {
      const em = ctx.em.fork();
      let projectId: string;
      let instanceId: string | undefined;
      let backupId: string | undefined;
      try {
        if (input.action === 'BACKUP') {
          if (input.instanceId == null) throw notFound('instanceId');
          const instance = await em.findOne(Instance, { $and: [{ id: idOf(input.instanceId, 'Instance', 'instanceId') }, scopeWhere(ctx, 'Instance')] });
          if (!instance) throw notFound('instanceId');
          projectId = instance.project.id;
          instanceId = instance.id;
        } else {
          if (input.backupId == null) throw notFound('backupId');
          const backup = await em.findOne(Backup, { $and: [{ id: idOf(input.backupId, 'Backup', 'backupId') }, scopeWhere(ctx, 'Backup')] });
          if (!backup) throw notFound('backupId');
          backupId = backup.id;
          instanceId = backup.instance.id;
          projectId = backup.project.id;
          if (input.projectId != null) {
            const project = await em.findOne(Project, { $and: [{ id: idOf(input.projectId, 'Project', 'projectId') }, scopeWhere(ctx, 'Project')] });
            if (!project) throw notFound('projectId');
            projectId = project.id;
          }
        }
      } catch (e) {
        // A query has no userErrors: an unknown or foreign object is a plain error.
        if (e instanceof UserErrorException) throw new GraphQLError(e.message, { extensions: { code: 'NOT_FOUND' } });
        throw e;
      }
      const bytes = await quotaBytes(em, input.action, { instanceId, backupId });
      const decision = await checkQuotas(em, { action: input.action, projectId, instanceId, bytes }, new Date(), { lock: false });
      const withMessage = (f: QuotaFinding) => ({ ...f, message: describeFinding(f) });
      return { admitted: decision.admitted, refusals: decision.refusals.map(withMessage), alerts: decision.alerts.map(withMessage) };
    },
  }),
);
