// Dedup-aware attribution over GraphQL: `attribution(input: {destinationId, projectIds?})`.
// The shares come from billing/destination-attribution.ts, which reads the destination's
// repository (read-only) and computes them over EVERY instance there, so they sum to the stored
// total; a TENANT then gets only its own projects' rows (BILLING and ADMIN: all, or projectIds).
import { GraphQLError } from 'graphql';
import type { Share } from '../../billing/attribution.ts';
import { AttributionError } from '../../billing/attribution.ts';
import { AttributionSourceError, destinationAttribution, type DestinationAttribution } from '../../billing/destination-attribution.ts';
import { ReportInputError, type ReportKey } from '../../billing/report-common.ts';
import { BackupDestination, type Role } from '../db/entities/index.ts';
import { builder } from './builder.ts';
import type { Context } from './context.ts';
import { badInput, databaseId, ReportKeyRef, scopeOfContext } from './reports.ts';

const READERS: { role: Role[] } = { role: ['ADMIN', 'BILLING', 'TENANT'] };

type ShareRow = Share & { key: ReportKey; project: ReportKey | null };
type Out = DestinationAttribution & { instanceRows: ShareRow[]; projectRows: ShareRow[] };

const AttributionShareRef = builder.objectRef<ShareRow>('AttributionShare').implement({
  description: 'What one instance (or project) is charged of a destination’s stored bytes',
  fields: (t) => ({
    key: t.field({ type: ReportKeyRef, description: 'The instance or project', resolve: (s) => s.key }),
    project: t.field({ type: ReportKeyRef, nullable: true, description: 'The instance’s project (null on project rows)', resolve: (s) => s.project }),
    uniqueBytes: t.field({ type: 'Bytes', description: 'Stored bytes of chunks only it references', resolve: (s) => s.uniqueBytes }),
    sharedBytes: t.field({ type: 'Bytes', description: 'Its share of chunks it shares (a chunk referenced by k instances counts 1/k)', resolve: (s) => s.sharedBytes }),
    totalBytes: t.field({ type: 'Bytes', description: 'uniqueBytes + sharedBytes: its exact share rounded by largest remainder', resolve: (s) => s.totalBytes }),
    exactNumerator: t.string({ description: 'The exact share is exactNumerator / exactDenominator bytes', resolve: (s) => s.exact.numerator.toString() }),
    exactDenominator: t.string({ resolve: (s) => s.exact.denominator.toString() }),
  }),
});

const AttributionRef = builder.objectRef<Out>('Attribution').implement({
  description: 'Who pays for the chunks a deduplicating destination stores (method: docs/billing.md)',
  fields: (t) => ({
    destination: t.field({ type: ReportKeyRef, resolve: (a) => ({ dimension: 'DESTINATION' as const, id: a.destinationId, name: a.destinationName }) }),
    storedTotal: t.field({ type: 'Bytes', description: 'Stored bytes of every chunk the available backups reference; the shares of all instances sum to it', resolve: (a) => a.storedTotal }),
    chunks: t.int({ description: 'Distinct chunks referenced', resolve: (a) => a.chunks }),
    backups: t.int({ description: 'Backups read', resolve: (a) => a.backups }),
    skippedBackups: t.int({ description: 'Available backups whose repository record could not be read (pruned or damaged meanwhile), not counted', resolve: (a) => a.skipped.length }),
    instances: t.field({ type: [AttributionShareRef], resolve: (a) => a.instanceRows }),
    projects: t.field({ type: [AttributionShareRef], resolve: (a) => a.projectRows }),
  }),
});

const AttributionInput = builder.inputType('AttributionInput', {
  fields: (t) => ({
    destinationId: t.id({ required: true }),
    projectIds: t.idList({ description: 'Only these projects’ rows (shares are still computed over every instance)' }),
  }),
});

async function names(ctx: Context, table: 'project' | 'instance', ids: string[]): Promise<Map<string, string>> {
  if (ids.length === 0) return new Map();
  const rows = await ctx.em.execute<{ id: string; name: string }[]>(`select id, name from ${table} where id = any(?::uuid[])`, [`{${ids.join(',')}}`]);
  return new Map(rows.map((r) => [r.id, r.name]));
}

builder.queryField('attribution', (t) =>
  t.field({
    type: AttributionRef,
    description: 'Dedup-aware attribution of a destination’s stored bytes to instances and projects (BILLING, ADMIN: all projects; TENANT: its own rows)',
    authScopes: READERS,
    args: { input: t.arg({ type: AttributionInput, required: true }) },
    resolve: async (_root, { input }, ctx): Promise<Out> => {
      const destinationId = databaseId(String(input.destinationId), 'BackupDestination', ['input', 'destinationId']);
      const projectIds = input.projectIds?.map((id) => databaseId(String(id), 'Project', ['input', 'projectIds']));
      // The caller's own view first (the tenant filter hides destinations its projects may not use): not visible reads as not found.
      if (!(await ctx.em.findOne(BackupDestination, { id: destinationId }))) throw new GraphQLError('destination not found', { extensions: { code: 'NOT_FOUND' } });
      let a: DestinationAttribution;
      try {
        a = await destinationAttribution(ctx.em, ctx.services.secrets, { id: destinationId }, scopeOfContext(ctx), { projectIds });
      } catch (e) {
        if (e instanceof AttributionSourceError && e.code === 'NOT_FOUND') throw new GraphQLError('destination not found', { extensions: { code: 'NOT_FOUND' } });
        if (e instanceof ReportInputError) throw badInput(e.message, e.code, ['input', ...e.field.slice(1)]);
        if (e instanceof AttributionSourceError || e instanceof AttributionError) throw new GraphQLError(e.message, { extensions: { code: 'REPOSITORY_INCONSISTENT' } });
        throw e;
      }
      const projectNames = await names(ctx, 'project', [...new Set([...a.visibleProjects.map((p) => p.id), ...a.visibleInstances.map((i) => i.projectId)])]);
      const instanceNames = await names(ctx, 'instance', a.visibleInstances.map((i) => i.id));
      const projectKey = (id: string): ReportKey => ({ dimension: 'PROJECT', id, name: projectNames.get(id) ?? null });
      return {
        ...a,
        instanceRows: a.visibleInstances.map((i) => ({ ...i, key: { dimension: 'INSTANCE', id: i.id, name: instanceNames.get(i.id) ?? null }, project: projectKey(i.projectId) })),
        projectRows: a.visibleProjects.map((p) => ({ ...p, key: projectKey(p.id), project: null })),
      };
    },
  }),
);
