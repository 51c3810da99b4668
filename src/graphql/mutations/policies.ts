// Admin mutations for policies (schedules, retention, destination, visibility, rules),
// policyAssign, and quotas with quotaAssign.
import type { EntityManager } from '@mikro-orm/postgresql';
import {
  BackupDestination, Instance, Policy, Project, Quota, QuotaActions, QuotaMeasures, QuotaScopes, Visibilities, type AssignmentRule,
} from '../../db/entities/index.ts';
import { builder } from '../builder.ts';
import { VisibilityEnum } from '../clouds.ts';
import type { Context } from '../context.ts';
import { pivotIds } from '../node.ts';
import { QuotaActionEnum, QuotaMeasureEnum, QuotaScopeEnum } from '../quotas.ts';
import { PolicyRef, QuotaRef } from '../refs.ts';
import { UserErrorException } from '../user-errors.ts';
import { idList, loadRef, loadRefs, mutate, name, payload, validate, z, deleteMutation } from './common.ts';

/** Configuration writes: the `config:write` action of src/auth/policy.ts (ADMIN). */
const ADMIN = { can: 'config:write' as const };

function isTimeZone(tz: string) {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

const unique = <T>(xs: T[]) => new Set(xs).size === xs.length;

export const scheduleSchema = z
  .object({
    timesOfDay: z.array(z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'a time of day HH:MM (00:00–23:59)')).max(48).refine(unique, 'times must be distinct').nullish(),
    daysOfWeek: z.array(z.number().int().min(1, 'days are 1 (Monday) … 7').max(7, 'days are 1 (Monday) … 7')).max(7).refine(unique, 'days must be distinct').nullish(),
    intervalHours: z.number().int().min(1, 'at least 1 hour').max(24, 'at most 24 hours').nullish(),
    betweenHours: z.object({ from: z.number().int().min(0).max(23), to: z.number().int().min(1).max(24) }).refine((b) => b.from < b.to, 'from must be before to').nullish(),
    windowMinutes: z.number().int().min(1, 'at least 1 minute').max(1440, 'at most 1440 minutes'),
    timeZone: z.string().max(64).refine(isTimeZone, 'an IANA time zone such as Europe/Berlin').nullish(),
  })
  .refine((s) => (s.timesOfDay?.length ?? 0) > 0 !== (s.intervalHours != null), 'give either timesOfDay or intervalHours')
  .refine((s) => s.betweenHours == null || s.intervalHours != null, { message: 'betweenHours goes with intervalHours', path: ['betweenHours'] });

const count = z.number().int().min(0).max(100_000);
const retentionSchema = z.object({
  keepLastFull: count.nullish(),
  keepLastIncremental: count.nullish(),
  keepDays: z.number().int().min(0).max(36_500).nullish(),
  keepLastWhileInstanceExists: z.boolean().nullish(),
});
const ruleSchema = z
  .object({
    projectId: z.string().nullish(),
    zoneName: z.string().min(1).max(255).nullish(),
    namePattern: z.string().min(1).max(200).nullish(),
  })
  .refine((r) => r.projectId != null || r.zoneName != null || r.namePattern != null, 'a rule needs projectId, zoneName or namePattern');

const policyFields = {
  name,
  description: z.string().max(2000).nullish(),
  enabled: z.boolean(),
  destinationId: z.string().nullish(),
  schedules: z.array(scheduleSchema).max(20, 'at most 20 schedules'),
  fullEvery: z.number().int().min(0).max(1000),
  priority: z.number().int().min(0, 'priority is 0–100').max(100, 'priority is 0–100'),
  retries: z.number().int().min(0).max(10),
  retention: retentionSchema,
  rules: z.array(ruleSchema).max(100, 'at most 100 rules'),
  visibility: z.enum(Visibilities),
  projectIds: idList,
};

const HourRangeInput = builder.inputType('HourRangeInput', { fields: (t) => ({ from: t.int({ required: true }), to: t.int({ required: true }) }) });

const PolicyScheduleInput = builder.inputType('PolicyScheduleInput', {
  description: 'Either timesOfDay, or intervalHours (optionally betweenHours); daysOfWeek empty = every day',
  fields: (t) => ({
    timesOfDay: t.stringList({ description: '"HH:MM" local times' }),
    daysOfWeek: t.intList({ description: 'ISO days 1 (Monday) … 7' }),
    intervalHours: t.int(),
    betweenHours: t.field({ type: HourRangeInput }),
    windowMinutes: t.int({ required: true }),
    timeZone: t.string({ description: 'IANA time zone; UTC when omitted' }),
  }),
});

const PolicyRetentionInput = builder.inputType('PolicyRetentionInput', {
  fields: (t) => ({
    keepLastFull: t.int(),
    keepLastIncremental: t.int(),
    keepDays: t.int({ description: 'Keep backups newer than this many days' }),
    keepLastWhileInstanceExists: t.boolean(),
  }),
});

const PolicyAssignmentRuleInput = builder.inputType('PolicyAssignmentRuleInput', {
  fields: (t) => ({ projectId: t.id(), zoneName: t.string(), namePattern: t.string({ description: 'Glob on the instance name, e.g. "db-*"' }) }),
});

const PolicyCreateInput = builder.inputType('PolicyCreateInput', {
  fields: (t) => ({
    name: t.string({ required: true }),
    description: t.string(),
    enabled: t.boolean({ defaultValue: true }),
    destinationId: t.id({ description: 'Where its backups go; the default destination when omitted' }),
    schedules: t.field({ type: [PolicyScheduleInput], defaultValue: [] }),
    fullEvery: t.int({ defaultValue: 7, description: 'A full backup after every N incrementals (0 = always full)' }),
    priority: t.int({ defaultValue: 50 }),
    retries: t.int({ defaultValue: 2 }),
    retention: t.field({ type: PolicyRetentionInput }),
    rules: t.field({ type: [PolicyAssignmentRuleInput], defaultValue: [] }),
    visibility: t.field({ type: VisibilityEnum, defaultValue: 'ALL_PROJECTS' }),
    projectIds: t.idList({ defaultValue: [] }),
  }),
});

const PolicyUpdateInput = builder.inputType('PolicyUpdateInput', {
  description: 'Omitted fields are left as they are; lists replace the stored ones',
  fields: (t) => ({
    id: t.id({ required: true }),
    name: t.string(),
    description: t.string(),
    enabled: t.boolean(),
    destinationId: t.id(),
    schedules: t.field({ type: [PolicyScheduleInput] }),
    fullEvery: t.int(),
    priority: t.int(),
    retries: t.int(),
    retention: t.field({ type: PolicyRetentionInput }),
    rules: t.field({ type: [PolicyAssignmentRuleInput] }),
    visibility: t.field({ type: VisibilityEnum }),
    projectIds: t.idList(),
  }),
});

const PolicyPayload = payload('PolicyPayload', 'policy', PolicyRef);

type V = Partial<{ [K in keyof typeof policyFields]: z.infer<(typeof policyFields)[K]> | null }>;

/** Applies validated fields to a policy, resolving referenced IDs through the caller's scope. */
async function applyPolicy(em: EntityManager, ctx: Context, p: Policy, v: V) {
  const changes: Record<string, unknown> = {};
  for (const key of ['name', 'description', 'enabled', 'fullEvery', 'priority', 'retries', 'visibility'] as const) if (v[key] != null) changes[key] = v[key];
  if (v.schedules != null) changes.schedules = v.schedules.map((s) => Object.fromEntries(Object.entries(s).filter(([, x]) => x != null)));
  if (v.retention != null) changes.retention = Object.fromEntries(Object.entries(v.retention).filter(([, x]) => x != null));
  if (v.rules != null) {
    const rules: AssignmentRule[] = [];
    for (const [i, r] of v.rules.entries()) {
      const project = r.projectId != null ? await loadRef(em, ctx, Project, 'Project', r.projectId, ['rules', String(i), 'projectId']) : undefined;
      rules.push(Object.fromEntries(Object.entries({ projectId: project?.id, zoneName: r.zoneName, namePattern: r.namePattern }).filter(([, x]) => x != null)));
    }
    changes.rules = rules;
  }
  if (v.destinationId != null) changes.destination = await loadRef(em, ctx, BackupDestination, 'BackupDestination', v.destinationId, ['destinationId']);
  em.assign(p, changes);
  if (v.projectIds != null) {
    if (p.projects.isInitialized() === false && !em.getUnitOfWork().getPersistStack().has(p)) await p.projects.init();
    p.projects.set(await loadRefs(em, ctx, Project, 'Project', v.projectIds, ['projectIds']));
  }
  return Object.keys(changes).concat(v.projectIds != null ? ['projects'] : []);
}

builder.mutationField('policyCreate', (t) =>
  t.field({
    type: PolicyPayload,
    authScopes: ADMIN,
    args: { input: t.arg({ type: PolicyCreateInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      mutate(ctx, async (em) => {
        const v = validate(z.object(policyFields), { ...input, retention: input.retention ?? {} });
        const policy = em.create(Policy, { name: v.name });
        await applyPolicy(em, ctx, policy, v);
        if (!policy.destination) {
          const def = await em.findOne(BackupDestination, { isDefault: true });
          if (def) policy.destination = def;
        }
        return { result: { policy }, audit: { action: 'policyCreate', objectType: 'Policy', objectId: policy.id, details: { name: v.name, visibility: v.visibility } } };
      }),
  }),
);

builder.mutationField('policyUpdate', (t) =>
  t.field({
    type: PolicyPayload,
    authScopes: ADMIN,
    args: { input: t.arg({ type: PolicyUpdateInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      mutate(ctx, async (em) => {
        const v = validate(z.object({ id: z.string(), ...Object.fromEntries(Object.entries(policyFields).map(([k, s]) => [k, s.nullish()])) }), input) as V & { id: string };
        const policy = await loadRef(em, ctx, Policy, 'Policy', v.id, ['id']);
        const changed = await applyPolicy(em, ctx, policy, v);
        return { result: { policy }, audit: { action: 'policyUpdate', objectType: 'Policy', objectId: policy.id, details: { name: policy.name, changed } } };
      }),
  }),
);

deleteMutation('policyDelete', Policy, 'Policy', 'Deletes a policy; its instances and backups keep existing without it');

const PolicyAssignInput = builder.inputType('PolicyAssignInput', {
  fields: (t) => ({
    policyId: t.id({ required: true }),
    instanceIds: t.idList({ required: true, description: 'Instances to assign the policy to directly' }),
  }),
});

builder.mutationField('policyAssign', (t) =>
  t.field({
    type: PolicyPayload,
    authScopes: ADMIN,
    args: { input: t.arg({ type: PolicyAssignInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      mutate(ctx, async (em) => {
        const v = validate(z.object({ policyId: z.string(), instanceIds: idList.min(1, 'at least one instance') }), input);
        const policy = await loadRef(em, ctx, Policy, 'Policy', v.policyId, ['policyId']);
        const instances = await loadRefs(em, ctx, Instance, 'Instance', v.instanceIds, ['instanceIds']);
        if (policy.visibility === 'CHOSEN_PROJECTS') {
          const allowed = new Set(await pivotIds({ ...ctx, em }, 'policy_project', 'policy_id', 'project_id', policy.id));
          const i = instances.findIndex((inst) => !allowed.has(inst.project.id));
          if (i >= 0) throw UserErrorException.of('NOT_VISIBLE', `policy ${JSON.stringify(policy.name)} is not visible to the project of instance ${JSON.stringify(instances[i]!.name)}`, ['input', 'instanceIds', String(i)]);
        }
        for (const inst of instances) inst.policy = policy;
        return {
          result: { policy },
          audit: { action: 'policyAssign', objectType: 'Policy', objectId: policy.id, details: { name: policy.name, instances: instances.map((i) => i.id) } },
        };
      }),
  }),
);

// --- quotas ------------------------------------------------------------------------------

const limit = z.bigint().min(0n).max(2n ** 62n).nullish();
const quotaFields = {
  name,
  action: z.enum(QuotaActions),
  scope: z.enum(QuotaScopes),
  measure: z.enum(QuotaMeasures),
  windowSeconds: z.number().int().min(60, 'at least 60 seconds').max(366 * 86_400, 'at most 366 days'),
  softLimit: limit,
  hardLimit: limit,
  projectIds: idList,
};
const limitsOk = (q: { softLimit?: bigint | null; hardLimit?: bigint | null }) => q.softLimit == null || q.hardLimit == null || q.softLimit <= q.hardLimit;

const QuotaCreateInput = builder.inputType('QuotaCreateInput', {
  fields: (t) => ({
    name: t.string({ required: true }),
    action: t.field({ type: QuotaActionEnum, required: true }),
    scope: t.field({ type: QuotaScopeEnum, required: true }),
    measure: t.field({ type: QuotaMeasureEnum, required: true }),
    windowSeconds: t.int({ required: true }),
    softLimit: t.field({ type: 'Bytes', description: 'Alert at this count or size' }),
    hardLimit: t.field({ type: 'Bytes', description: 'Refuse beyond this count or size' }),
    projectIds: t.idList({ defaultValue: [] }),
  }),
});

const QuotaUpdateInput = builder.inputType('QuotaUpdateInput', {
  fields: (t) => ({
    id: t.id({ required: true }),
    name: t.string(),
    windowSeconds: t.int(),
    softLimit: t.field({ type: 'Bytes' }),
    hardLimit: t.field({ type: 'Bytes' }),
  }),
});

const QuotaPayload = payload('QuotaPayload', 'quota', QuotaRef);

builder.mutationField('quotaCreate', (t) =>
  t.field({
    type: QuotaPayload,
    authScopes: ADMIN,
    args: { input: t.arg({ type: QuotaCreateInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      mutate(ctx, async (em) => {
        const v = validate(
          z.object(quotaFields)
            .refine((q) => q.softLimit != null || q.hardLimit != null, { message: 'give softLimit, hardLimit or both', path: ['hardLimit'] })
            .refine(limitsOk, { message: 'softLimit must not exceed hardLimit', path: ['softLimit'] }),
          input,
        );
        const quota = em.create(Quota, {
          name: v.name, action: v.action, scope: v.scope, measure: v.measure, windowSeconds: v.windowSeconds,
          softLimit: v.softLimit ?? undefined, hardLimit: v.hardLimit ?? undefined,
        });
        quota.projects.set(await loadRefs(em, ctx, Project, 'Project', v.projectIds, ['projectIds']));
        return {
          result: { quota },
          audit: { action: 'quotaCreate', objectType: 'Quota', objectId: quota.id, details: { name: v.name, action: v.action, scope: v.scope, measure: v.measure, softLimit: v.softLimit?.toString(), hardLimit: v.hardLimit?.toString() } },
        };
      }),
  }),
);

builder.mutationField('quotaUpdate', (t) =>
  t.field({
    type: QuotaPayload,
    authScopes: ADMIN,
    args: { input: t.arg({ type: QuotaUpdateInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      mutate(ctx, async (em) => {
        const v = validate(z.object({ id: z.string(), name: name.nullish(), windowSeconds: quotaFields.windowSeconds.nullish(), softLimit: limit, hardLimit: limit }), input);
        const quota = await loadRef(em, ctx, Quota, 'Quota', v.id, ['id']);
        const changes: Record<string, unknown> = {};
        for (const key of ['name', 'windowSeconds', 'softLimit', 'hardLimit'] as const) if (v[key] != null) changes[key] = v[key];
        em.assign(quota, changes);
        if (!limitsOk(quota)) throw UserErrorException.of('INVALID', 'softLimit must not exceed hardLimit', ['input', 'softLimit']);
        return { result: { quota }, audit: { action: 'quotaUpdate', objectType: 'Quota', objectId: quota.id, details: { name: quota.name, changed: Object.keys(changes) } } };
      }),
  }),
);

deleteMutation('quotaDelete', Quota, 'Quota');

const QuotaAssignInput = builder.inputType('QuotaAssignInput', {
  fields: (t) => ({
    quotaId: t.id({ required: true }),
    projectIds: t.idList({ required: true, description: 'Projects to add to the quota (already assigned ones stay)' }),
  }),
});

builder.mutationField('quotaAssign', (t) =>
  t.field({
    type: QuotaPayload,
    authScopes: ADMIN,
    args: { input: t.arg({ type: QuotaAssignInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      mutate(ctx, async (em) => {
        const v = validate(z.object({ quotaId: z.string(), projectIds: idList.min(1, 'at least one project') }), input);
        const quota = await loadRef(em, ctx, Quota, 'Quota', v.quotaId, ['quotaId']);
        const projects = await loadRefs(em, ctx, Project, 'Project', v.projectIds, ['projectIds']);
        await quota.projects.init();
        for (const p of projects) if (!quota.projects.contains(p)) quota.projects.add(p);
        return { result: { quota }, audit: { action: 'quotaAssign', objectType: 'Quota', objectId: quota.id, details: { name: quota.name, projects: projects.map((p) => p.id) } } };
      }),
  }),
);
