// Billing and reports over GraphQL: sizeReport, frontEndCapacity, invoicePreview,
// policyPriceTags, price cards. The figures come from billing/ (pure SQL and logic); this file
// maps inputs (global IDs → database IDs), the caller's scope and errors.
// BILLING and ADMIN see every project; a TENANT only its own, whatever its filter says.
// Policy.averageBackupSize/dataToProcess/price are added to the Policy type here (batched: one
// query per request for every policy asked), and `policyPriceTags` lists them for all policies.
import { decodeGlobalID, encodeGlobalID } from '@pothos/plugin-relay';
import DataLoader from 'dataloader';
import { GraphQLError } from 'graphql';
import { frontEndCapacity } from '../../billing/front-end.ts';
import { policyPriceTags, type PolicyPriceTag } from '../../billing/policy-prices.ts';
import { canonicalPrice, createPriceCard, invoicePreview, PriceError, type Invoice, type InvoiceLine } from '../../billing/price-card.ts';
import { Dimensions, ReportInputError, type Dimension, type ReportFilter, type ReportKey, type ReportScope } from '../../billing/report-common.ts';
import { sizeReport, SizeMeasures, type SizeFigures } from '../../billing/size-report.ts';
import { PriceCard, type Role } from '../db/entities/index.ts';
import { builder } from './builder.ts';
import type { Context } from './context.ts';
import { PolicyRef } from './refs.ts';
import { UserErrorRef, type UserError } from './user-errors.ts';

const READERS: { role: Role[] } = { role: ['ADMIN', 'BILLING', 'TENANT'] };

/** The GraphQL type name of each dimension's objects (for global IDs). */
export const dimensionTypename: Record<Dimension, string> = {
  PROJECT: 'Project', INSTANCE: 'Instance', ZONE: 'AvailabilityZone', POLICY: 'Policy', DESTINATION: 'BackupDestination', CLOUD: 'Cloud',
};

export function badInput(message: string, reason: string, field: string[]): GraphQLError {
  return new GraphQLError(message, { extensions: { code: 'BAD_USER_INPUT', reason, field } });
}

/** Runs a billing call, turning its typed input errors into GraphQL errors. */
async function billing<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (e) {
    if (e instanceof ReportInputError || e instanceof PriceError) throw badInput(e.message, e.code, e.field);
    throw e;
  }
}

export function scopeOfContext(ctx: Context): ReportScope {
  // scope-auth has checked the role; a missing viewer here would be a bug, so fail closed.
  return { projectIds: ctx.viewer ? ctx.viewer.projectIds : [] };
}

/** A global ID (or a bare database ID) of `typename` → database ID. */
export function databaseId(value: string, typename: string, field: string[]): string {
  if (/^[0-9a-f-]{36}$/i.test(value)) return value;
  try {
    const { typename: t, id } = decodeGlobalID(value);
    if (t === typename) return id;
  } catch {
    // fall through
  }
  throw badInput(`${field.join('.')}: ${JSON.stringify(value)} is not a ${typename} ID`, 'INVALID_ID', field);
}

const ids = (list: readonly (string | number)[] | null | undefined, typename: string, field: string) =>
  list ? list.map((v) => databaseId(String(v), typename, ['input', 'filter', field])) : undefined;

// ---- types ----------------------------------------------------------------------------------

export const ReportDimensionEnum = builder.enumType('ReportDimension', { values: Dimensions });
const SizeMeasureEnum = builder.enumType('SizeMeasure', {
  description: 'What a size report sums; see each value',
  values: {
    STORED: { description: 'Bytes held at the end of the range (completedAt < to ≤ deletedAt, or not deleted)' },
    STORED_ADDED: { description: 'Stored bytes of backups completed in [from, to)' },
    FRONT_END: { description: 'Front-end (logical) bytes of backups completed in [from, to)' },
    TRANSFERRED: { description: 'Bytes transferred by backups completed in [from, to): the transfer-size view' },
    BYTE_HOURS: { description: 'Stored bytes integrated over [from, to), in byte-hours (rounded half up per row)' },
    BACKUPS: { description: 'Number of backups completed in [from, to)' },
    FRONT_END_CAPACITY: { description: 'Front-end capacity at `to`: per instance its last full backup held then (frontEndCapacity)' },
  } as const,
});

export const ReportKeyRef = builder.objectRef<ReportKey>('ReportKey').implement({
  description: 'One grouping key of a report row: the object’s global ID and its current name',
  fields: (t) => ({
    dimension: t.field({ type: ReportDimensionEnum, resolve: (k) => k.dimension }),
    id: t.id({ nullable: true, description: 'Global ID; null for a key the backups had none of (e.g. no policy)', resolve: (k) => (k.id ? encodeGlobalID(dimensionTypename[k.dimension], k.id) : null) }),
    name: t.string({ nullable: true, description: 'Current name; null when the object is gone', resolve: (k) => k.name }),
  }),
});

const SizeFiguresRef = builder.objectRef<SizeFigures>('SizeFigures').implement({
  description: 'Every figure of a size report row (see SizeMeasure)',
  fields: (t) => ({
    stored: t.field({ type: 'Bytes', resolve: (f) => f.stored }),
    storedAdded: t.field({ type: 'Bytes', resolve: (f) => f.storedAdded }),
    frontEnd: t.field({ type: 'Bytes', resolve: (f) => f.frontEnd }),
    transferred: t.field({ type: 'Bytes', resolve: (f) => f.transferred }),
    byteHours: t.field({ type: 'Bytes', resolve: (f) => f.byteHours }),
    backups: t.int({ resolve: (f) => Number(f.backups) }),
  }),
});

type Row = { keys: ReportKey[]; value: bigint; figures: SizeFigures | null; instances: number | null };
type Report = { from: Date | null; to: Date; groupBy: Dimension[]; measure: (typeof SizeMeasures)[number] | 'FRONT_END_CAPACITY'; rows: Row[]; total: bigint; totals: SizeFigures | null };

const SizeReportRowRef = builder.objectRef<Row>('SizeReportRow').implement({
  fields: (t) => ({
    keys: t.field({ type: [ReportKeyRef], description: 'One key per groupBy dimension, in that order', resolve: (r) => r.keys }),
    value: t.field({ type: 'Bytes', description: 'The chosen measure', resolve: (r) => r.value }),
    figures: t.field({ type: SizeFiguresRef, nullable: true, description: 'All figures (null in a front-end capacity report)', resolve: (r) => r.figures }),
    instances: t.int({ nullable: true, description: 'Instances counted (front-end capacity only)', resolve: (r) => r.instances }),
  }),
});

const SizeReportRef = builder.objectRef<Report>('SizeReport').implement({
  fields: (t) => ({
    from: t.field({ type: 'DateTime', nullable: true, resolve: (r) => r.from }),
    to: t.field({ type: 'DateTime', resolve: (r) => r.to }),
    groupBy: t.field({ type: [ReportDimensionEnum], resolve: (r) => r.groupBy }),
    measure: t.field({ type: SizeMeasureEnum, resolve: (r) => r.measure }),
    rows: t.field({ type: [SizeReportRowRef], resolve: (r) => r.rows }),
    total: t.field({ type: 'Bytes', description: 'Sum of the rows’ values', resolve: (r) => r.total }),
    totals: t.field({ type: SizeFiguresRef, nullable: true, resolve: (r) => r.totals }),
  }),
});

const SizeReportFilter = builder.inputType('SizeReportFilter', {
  fields: (t) => ({
    projectIds: t.idList(),
    instanceIds: t.idList(),
    policyIds: t.idList(),
    destinationIds: t.idList(),
    zoneIds: t.idList(),
    excludeDestinationIds: t.idList({ description: 'Leave out backups in these destinations (e.g. a free tier)' }),
  }),
});

type FilterInput = typeof SizeReportFilter.$inferInput;

export function filterFromInput(f: FilterInput | null | undefined): ReportFilter | undefined {
  if (!f) return undefined;
  return {
    projectIds: ids(f.projectIds, 'Project', 'projectIds'),
    instanceIds: ids(f.instanceIds, 'Instance', 'instanceIds'),
    policyIds: ids(f.policyIds, 'Policy', 'policyIds'),
    destinationIds: ids(f.destinationIds, 'BackupDestination', 'destinationIds'),
    zoneIds: ids(f.zoneIds, 'AvailabilityZone', 'zoneIds'),
    excludeDestinationIds: ids(f.excludeDestinationIds, 'BackupDestination', 'excludeDestinationIds'),
  };
}

const SizeReportInput = builder.inputType('SizeReportInput', {
  fields: (t) => ({
    from: t.field({ type: 'DateTime', required: true }),
    to: t.field({ type: 'DateTime', required: true, description: 'Exclusive; the range may span at most 1830 days' }),
    groupBy: t.field({ type: [ReportDimensionEnum], required: true }),
    measure: t.field({ type: SizeMeasureEnum, required: true }),
    filter: t.field({ type: SizeReportFilter }),
  }),
});

const FrontEndCapacityInput = builder.inputType('FrontEndCapacityInput', {
  fields: (t) => ({
    to: t.field({ type: 'DateTime', description: 'As of when (default: now)' }),
    groupBy: t.field({ type: [ReportDimensionEnum], required: true }),
    filter: t.field({ type: SizeReportFilter }),
  }),
});

async function capacity(ctx: Context, to: Date, groupBy: Dimension[], filter: ReportFilter | undefined, from: Date | null): Promise<Report> {
  const r = await billing(() => frontEndCapacity(ctx.em, { to, groupBy, filter }, scopeOfContext(ctx)));
  return {
    from, to, groupBy, measure: 'FRONT_END_CAPACITY', total: r.total, totals: null,
    rows: r.rows.map((x) => ({ keys: x.keys, value: x.value, figures: null, instances: x.instances })),
  };
}

builder.queryField('sizeReport', (t) =>
  t.field({
    type: SizeReportRef,
    description: 'Backup sizes over [from, to), grouped and filtered (BILLING, ADMIN: all projects; TENANT: its own)',
    authScopes: READERS,
    args: { input: t.arg({ type: SizeReportInput, required: true }) },
    resolve: async (_root, { input }, ctx) => {
      const filter = filterFromInput(input.filter);
      const groupBy = input.groupBy as Dimension[];
      if (input.measure === 'FRONT_END_CAPACITY') {
        if (!(input.from < input.to)) throw badInput('`from` must be before `to`', 'INVALID_RANGE', ['input', 'from']);
        return capacity(ctx, input.to, groupBy, filter, input.from);
      }
      const r = await billing(() => sizeReport(ctx.em, { from: input.from, to: input.to, groupBy, measure: input.measure as (typeof SizeMeasures)[number], filter }, scopeOfContext(ctx)));
      return { ...r, rows: r.rows.map((x) => ({ ...x, instances: null })) };
    },
  }),
);

builder.queryField('frontEndCapacity', (t) =>
  t.field({
    type: SizeReportRef,
    description: 'Front-end capacity: per instance the front-end size of its last full backup held at `to` (incrementals excluded), summed by group',
    authScopes: READERS,
    args: { input: t.arg({ type: FrontEndCapacityInput, required: true }) },
    resolve: (_root, { input }, ctx) => capacity(ctx, input.to ?? new Date(), input.groupBy as Dimension[], filterFromInput(input.filter), null),
  }),
);

// ---- price tags, invoices, price cards ---------------------------------------------------------

const PolicyPriceTagRef = builder.objectRef<PolicyPriceTag>('PolicyPriceTag').implement({
  description: 'What a policy costs to run (the same figures as Policy.averageBackupSize, dataToProcess and price, for a chosen window)',
  fields: (t) => ({
    policy: t.field({ type: ReportKeyRef, resolve: (p) => ({ dimension: 'POLICY' as const, id: p.policyId, name: p.name }) }),
    averageBackupSize: t.field({ type: 'Bytes', description: 'Mean stored bytes of its backups completed in the window', resolve: (p) => p.averageBackupSize }),
    backupsCounted: t.int({ resolve: (p) => p.backupsCounted }),
    dataToProcess: t.field({ type: 'Bytes', description: 'Front-end capacity of the instances assigned to it', resolve: (p) => p.dataToProcess }),
    instances: t.int({ resolve: (p) => p.instances }),
    price: t.string({ description: 'Per month: dataToProcess × the front-end price per TB-month of its price card (decimal, 2 places)', resolve: (p) => p.price }),
    currency: t.exposeString('currency'),
    priceCard: t.string({ nullable: true, resolve: (p) => p.priceCard }),
  }),
});

const PolicyPriceTagsInput = builder.inputType('PolicyPriceTagsInput', {
  fields: (t) => ({
    from: t.field({ type: 'DateTime', description: 'Window for averageBackupSize (default: 30 days before `to`)' }),
    to: t.field({ type: 'DateTime', description: 'Default: now' }),
    policyIds: t.idList(),
  }),
});

builder.queryField('policyPriceTags', (t) =>
  t.field({
    type: [PolicyPriceTagRef],
    authScopes: READERS,
    args: { input: t.arg({ type: PolicyPriceTagsInput }) },
    resolve: (_root, { input }, ctx) =>
      billing(() => policyPriceTags(ctx.em, {
        from: input?.from ?? undefined,
        to: input?.to ?? undefined,
        policyIds: input?.policyIds ? input.policyIds.map((id) => databaseId(String(id), 'Policy', ['input', 'policyIds'])) : undefined,
      }, scopeOfContext(ctx))),
  }),
);

const InvoiceLineKindEnum = builder.enumType('InvoiceLineKind', { values: ['STORAGE', 'FRONT_END'] as const });

type LineWithNames = InvoiceLine & { policyName: string | null; destinationName: string | null };

const InvoiceLineRef = builder.objectRef<LineWithNames>('InvoiceLine').implement({
  fields: (t) => ({
    kind: t.field({ type: InvoiceLineKindEnum, resolve: (l) => l.kind }),
    policy: t.field({ type: ReportKeyRef, nullable: true, resolve: (l) => (l.policyId ? { dimension: 'POLICY' as const, id: l.policyId, name: l.policyName } : null) }),
    destination: t.field({ type: ReportKeyRef, nullable: true, resolve: (l) => (l.destinationId ? { dimension: 'DESTINATION' as const, id: l.destinationId, name: l.destinationName } : null) }),
    priceCard: t.string({ nullable: true, resolve: (l) => l.priceCard }),
    quantity: t.string({ description: 'GB-months (STORAGE) or TB (FRONT_END), 6 decimals', resolve: (l) => l.quantity }),
    unit: t.string({ resolve: (l) => l.unit }),
    unitPrice: t.string({ resolve: (l) => l.unitPrice }),
    amount: t.string({ description: 'Rounded half up to cents from the exact usage', resolve: (l) => l.amount }),
  }),
});

type InvoiceOut = Omit<Invoice, 'lines'> & { lines: LineWithNames[] };

const InvoiceRef = builder.objectRef<InvoiceOut>('InvoicePreview').implement({
  fields: (t) => ({
    project: t.field({ type: ReportKeyRef, resolve: async (i, _a, ctx) => ({ dimension: 'PROJECT' as const, id: i.projectId, name: (await names(ctx, 'project', [i.projectId])).get(i.projectId) ?? null }) }),
    period: t.exposeString('period'),
    from: t.field({ type: 'DateTime', resolve: (i) => i.from }),
    to: t.field({ type: 'DateTime', description: 'End of the usage counted (the month end, or asOf)', resolve: (i) => i.to }),
    currency: t.exposeString('currency'),
    lines: t.field({ type: [InvoiceLineRef], resolve: (i) => i.lines }),
    total: t.string({ description: 'Sum of the lines’ amounts', resolve: (i) => i.total }),
  }),
});

async function names(ctx: Context, table: 'project' | 'policy' | 'backup_destination', list: string[]): Promise<Map<string, string>> {
  if (list.length === 0) return new Map();
  const rows = await ctx.em.execute<{ id: string; name: string }[]>(`select id, name from ${table} where id = any(?::uuid[])`, [`{${list.join(',')}}`]);
  return new Map(rows.map((r) => [r.id, r.name]));
}

const InvoicePreviewInput = builder.inputType('InvoicePreviewInput', {
  fields: (t) => ({
    projectId: t.id({ required: true }),
    period: t.string({ required: true, description: 'Calendar month "YYYY-MM" (UTC)' }),
    asOf: t.field({ type: 'DateTime', description: 'Count usage up to here (default: now)' }),
  }),
});

builder.queryField('invoicePreview', (t) =>
  t.field({
    type: InvoiceRef,
    description: 'What a project would be invoiced for a month, per policy, destination and price card',
    authScopes: READERS,
    args: { input: t.arg({ type: InvoicePreviewInput, required: true }) },
    resolve: async (_root, { input }, ctx) => {
      const projectId = databaseId(String(input.projectId), 'Project', ['input', 'projectId']);
      const scope = scopeOfContext(ctx);
      // Not yours reads as not found: no existence leak.
      if (scope.projectIds !== null && !scope.projectIds.includes(projectId)) {
        throw new GraphQLError('project not found', { extensions: { code: 'NOT_FOUND' } });
      }
      const inv = await billing(() => invoicePreview(ctx.em, projectId, input.period, input.asOf ?? undefined));
      const policies = await names(ctx, 'policy', [...new Set(inv.lines.flatMap((l) => (l.policyId ? [l.policyId] : [])))]);
      const destinations = await names(ctx, 'backup_destination', [...new Set(inv.lines.flatMap((l) => (l.destinationId ? [l.destinationId] : [])))]);
      return {
        ...inv,
        lines: inv.lines.map((l) => ({ ...l, policyName: l.policyId ? policies.get(l.policyId) ?? null : null, destinationName: l.destinationId ? destinations.get(l.destinationId) ?? null : null })),
      };
    },
  }),
);

const PriceCardRef = builder.objectRef<PriceCard>('PriceCard').implement({
  description: 'Prices for a policy and/or destination and optionally a UTC hour slot; the most specific card wins',
  fields: (t) => ({
    id: t.id({ resolve: (c) => encodeGlobalID('PriceCard', c.id) }),
    name: t.exposeString('name'),
    policyId: t.id({ nullable: true, resolve: (c) => (c.policy ? encodeGlobalID('Policy', c.policy.id) : null) }),
    destinationId: t.id({ nullable: true, resolve: (c) => (c.destination ? encodeGlobalID('BackupDestination', c.destination.id) : null) }),
    slotFromHour: t.int({ nullable: true, resolve: (c) => c.slotFromHour ?? null }),
    slotToHour: t.int({ nullable: true, resolve: (c) => c.slotToHour ?? null }),
    currency: t.exposeString('currency'),
    storedPerGbMonth: t.string({ resolve: (c) => canonicalPrice(String(c.storedPerGbMonth)) }),
    frontEndPerTbMonth: t.string({ resolve: (c) => canonicalPrice(String(c.frontEndPerTbMonth)) }),
  }),
});

builder.queryField('priceCards', (t) =>
  t.field({
    type: [PriceCardRef],
    authScopes: { role: ['ADMIN', 'BILLING'] },
    resolve: (_root, _args, ctx) => ctx.em.find(PriceCard, {}, { orderBy: { name: 'asc' } }),
  }),
);

const PriceCardCreateInput = builder.inputType('PriceCardCreateInput', {
  fields: (t) => ({
    name: t.string({ required: true }),
    policyId: t.id(),
    destinationId: t.id(),
    slotFromHour: t.int({ description: 'UTC hour the slot starts (0–23); with slotToHour' }),
    slotToHour: t.int({ description: 'UTC hour the slot ends, exclusive; wraps past midnight when below slotFromHour' }),
    currency: t.string({ description: 'ISO 4217 code (default EUR)' }),
    storedPerGbMonth: t.string({ required: true, description: 'Decimal, e.g. "0.02" per GB (10^9 bytes) per month' }),
    frontEndPerTbMonth: t.string({ required: true, description: 'Decimal per TB (10^12 bytes) of front-end capacity per month' }),
  }),
});

type PriceCardPayload = { priceCard?: PriceCard; userErrors: UserError[] };

const PriceCardPayloadRef = builder.objectRef<PriceCardPayload>('PriceCardPayload').implement({
  fields: (t) => ({
    priceCard: t.field({ type: PriceCardRef, nullable: true, resolve: (p) => p.priceCard ?? null }),
    userErrors: t.field({ type: [UserErrorRef], resolve: (p) => p.userErrors }),
  }),
});

builder.mutationField('priceCardCreate', (t) =>
  t.field({
    type: PriceCardPayloadRef,
    authScopes: { role: ['ADMIN'] },
    args: { input: t.arg({ type: PriceCardCreateInput, required: true }) },
    resolve: async (_root, { input }, ctx): Promise<PriceCardPayload> => {
      if (input.name.length < 1 || input.name.length > 200) return { userErrors: [{ code: 'INVALID', field: ['input', 'name'], message: 'name must be 1–200 characters' }] };
      if (input.currency != null && !/^[A-Z]{3}$/.test(input.currency)) return { userErrors: [{ code: 'INVALID', field: ['input', 'currency'], message: 'currency must be a 3-letter ISO 4217 code' }] };
      if (await ctx.em.count(PriceCard, { name: input.name })) return { userErrors: [{ code: 'TAKEN', field: ['input', 'name'], message: 'a price card with this name exists' }] };
      try {
        const policyId = input.policyId ? databaseId(String(input.policyId), 'Policy', ['input', 'policyId']) : null;
        const destinationId = input.destinationId ? databaseId(String(input.destinationId), 'BackupDestination', ['input', 'destinationId']) : null;
        if (policyId && !(await ctx.em.count('Policy', { id: policyId }))) return { userErrors: [{ code: 'NOT_FOUND', field: ['input', 'policyId'], message: 'no such policy' }] };
        if (destinationId && !(await ctx.em.count('BackupDestination', { id: destinationId }))) return { userErrors: [{ code: 'NOT_FOUND', field: ['input', 'destinationId'], message: 'no such destination' }] };
        const card = await ctx.em.transactional((em) => createPriceCard(em as typeof ctx.em, { ...input, policyId, destinationId, currency: input.currency ?? undefined }));
        return { priceCard: card, userErrors: [] };
      } catch (e) {
        if (e instanceof PriceError) return { userErrors: [{ code: e.code, field: ['input', ...e.field], message: e.message }] };
        if (e instanceof GraphQLError && e.extensions.code === 'BAD_USER_INPUT') return { userErrors: [{ code: 'INVALID_ID', field: e.extensions.field as string[], message: e.message }] };
        throw e;
      }
    },
  }),
);

// ---- the price fields on Policy -----------------------------------------------------------------

const tagLoaders = new WeakMap<Context, DataLoader<string, PolicyPriceTag | null>>();

/** Per request: every policy's tag asked for in one operation comes from one query. */
function priceTag(ctx: Context, policyId: string): Promise<PolicyPriceTag | null> {
  let loader = tagLoaders.get(ctx);
  if (!loader) {
    loader = new DataLoader(async (ids: readonly string[]) => {
      const tags = await billing(() => policyPriceTags(ctx.em, { policyIds: [...ids] }, scopeOfContext(ctx)));
      const byId = new Map(tags.map((t) => [t.policyId, t]));
      return ids.map((id) => byId.get(id) ?? null);
    });
    tagLoaders.set(ctx, loader);
  }
  return loader.load(policyId);
}

const PRICE_READERS: { role: Role[] } = { role: ['ADMIN', 'OPERATOR', 'BILLING', 'TENANT'] };

builder.objectFields(PolicyRef, (t) => ({
  averageBackupSize: t.field({
    type: 'Bytes',
    authScopes: PRICE_READERS,
    description: 'Mean stored bytes of its backups completed in the last 30 days (a tenant: of its own instances)',
    resolve: async (p, _a, ctx) => (await priceTag(ctx, p.id))?.averageBackupSize ?? 0n,
  }),
  dataToProcess: t.field({
    type: 'Bytes',
    authScopes: PRICE_READERS,
    description: 'Front-end capacity (last full backup) of the instances assigned to it',
    resolve: async (p, _a, ctx) => (await priceTag(ctx, p.id))?.dataToProcess ?? 0n,
  }),
  price: t.string({
    authScopes: PRICE_READERS,
    description: 'Per month: dataToProcess × the front-end price per TB-month of its price card, in `priceCurrency` (decimal, 2 places)',
    resolve: async (p, _a, ctx) => (await priceTag(ctx, p.id))?.price ?? '0.00',
  }),
  priceCurrency: t.string({
    authScopes: PRICE_READERS,
    resolve: async (p, _a, ctx) => (await priceTag(ctx, p.id))?.currency ?? 'EUR',
  }),
}));
