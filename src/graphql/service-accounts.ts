// Service accounts through the API (ADMIN only, action `account:manage`): create, list,
// enable/disable, change projects, rotate the secret. A client secret appears in a payload
// exactly once (create, rotate); the stored hash never leaves the database.
import { decodeGlobalID, encodeGlobalID } from '@pothos/plugin-relay';
import { GraphQLError } from 'graphql';
import { can } from '../auth/policy.ts';
import {
  auditAccountChange, createServiceAccount, resolveProjectIds, rotateSecret, ServiceAccountError, setEnabled, setProjects,
} from '../auth/service-accounts.ts';
import { Roles, ServiceAccount } from '../db/entities/index.ts';
import { builder } from './builder.ts';
import { connectionComplexity, keysetConnection, namedConnection } from './connections.ts';
import type { Context } from './context.ts';
import { registerNodeType } from './node.ts';
import { UserErrorRef, type UserError } from './user-errors.ts';

export const RoleEnum = builder.enumType('Role', { values: Roles });

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Accounts by database ID, for an ADMIN only (anyone else gets nulls: no existence leak). */
async function loadAccounts(ids: readonly string[], ctx: Context): Promise<(ServiceAccount | null)[]> {
  const valid = ids.filter((id) => UUID.test(id));
  if (!can(ctx.viewer, 'account:manage') || valid.length === 0) return ids.map(() => null);
  const rows = await ctx.em.find(ServiceAccount, { id: { $in: valid } });
  return ids.map((id) => rows.find((r) => r.id === id) ?? null);
}

registerNodeType('ServiceAccount');

export const ServiceAccountRef = builder.node(builder.objectRef<ServiceAccount>('ServiceAccount'), {
  id: { resolve: (a) => a.id },
  loadMany: (ids, ctx) => loadAccounts(ids, ctx),
  description: 'An API client. Its secret is shown once, at creation or rotation',
  fields: (t) => ({
    name: t.exposeString('name'),
    role: t.field({ type: RoleEnum, resolve: (a) => a.role }),
    clientId: t.exposeString('clientId'),
    enabled: t.exposeBoolean('enabled'),
    projectIds: t.idList({
      description: "Global IDs of a TENANT account's projects",
      resolve: async (a, _args, ctx) => {
        const projects = await a.projects.loadItems({ ref: true });
        return projects.map((p) => encodeGlobalID('Project', p.id));
      },
    }),
    createdAt: t.field({ type: 'DateTime', resolve: (a) => a.createdAt }),
    lastUsedAt: t.field({ type: 'DateTime', nullable: true, description: 'When it last obtained a token', resolve: (a) => a.lastUsedAt ?? null }),
  }),
});

const ProjectRefsDescription = "Projects of a TENANT account: each a project's global ID or its OpenStack project ID";

const ServiceAccountCreateInput = builder.inputType('ServiceAccountCreateInput', {
  fields: (t) => ({
    name: t.string({ required: true }),
    role: t.field({ type: RoleEnum, required: true }),
    projectIds: t.idList({ description: ProjectRefsDescription }),
  }),
});

const ServiceAccountUpdateInput = builder.inputType('ServiceAccountUpdateInput', {
  fields: (t) => ({
    id: t.id({ required: true }),
    enabled: t.boolean({ description: 'Disabling revokes every token of the account at once' }),
    projectIds: t.idList({ description: `${ProjectRefsDescription}; replaces the current list` }),
  }),
});

const ServiceAccountRotateSecretInput = builder.inputType('ServiceAccountRotateSecretInput', {
  fields: (t) => ({ id: t.id({ required: true }) }),
});

type Payload = { account?: ServiceAccount; clientSecret?: string; userErrors: UserError[] };

const ServiceAccountPayload = builder.objectRef<Payload>('ServiceAccountPayload').implement({
  fields: (t) => ({
    serviceAccount: t.field({ type: ServiceAccountRef, nullable: true, resolve: (p) => p.account ?? null }),
    clientSecret: t.string({ nullable: true, description: 'Shown once (create, rotate); store it now', resolve: (p) => p.clientSecret ?? null }),
    userErrors: t.field({ type: [UserErrorRef], resolve: (p) => p.userErrors }),
  }),
});

const MAX_PROJECTS = 100;

function tooManyProjects(): Payload {
  return { userErrors: [{ code: 'TOO_MANY', field: ['input', 'projectIds'], message: `at most ${MAX_PROJECTS} projects` }] };
}

/** Runs `work` in a transaction; a ServiceAccountError rolls it back and answers userErrors. */
async function mutate(ctx: Context, work: (em: Context['em']) => Promise<Payload>): Promise<Payload> {
  try {
    return await ctx.em.transactional((em) => work(em as Context['em']));
  } catch (e) {
    if (e instanceof ServiceAccountError) return { userErrors: [{ code: e.code, field: ['input', ...(e.field ?? [])], message: e.message }] };
    throw e;
  }
}

/** The account a global ID names, or a NOT_FOUND error (also for wrong-type or malformed IDs). */
async function accountById(em: Context['em'], globalId: string): Promise<ServiceAccount> {
  let id: string | null = null;
  try {
    const decoded = decodeGlobalID(globalId);
    if (decoded.typename === 'ServiceAccount' && UUID.test(decoded.id)) id = decoded.id;
  } catch {}
  const account = id ? await em.findOne(ServiceAccount, { id }, { populate: ['projects'] }) : null;
  if (!account) throw ServiceAccountError.notFound(globalId);
  return account;
}

builder.mutationField('serviceAccountCreate', (t) =>
  t.field({
    type: ServiceAccountPayload,
    authScopes: { can: 'account:manage' },
    args: { input: t.arg({ type: ServiceAccountCreateInput, required: true }) },
    resolve: async (_root, { input }, ctx) => {
      const refs = (input.projectIds ?? []).map(String);
      if (refs.length > MAX_PROJECTS) return tooManyProjects();
      return mutate(ctx, async (em) => {
        const projectIds = await resolveProjectIds(em, refs);
        const created = await createServiceAccount(em, { name: input.name, role: input.role, projectIds });
        auditAccountChange(em, ctx.viewer, 'service-account.create', created.account, { projectIds });
        await em.flush();
        return { account: created.account, clientSecret: created.clientSecret, userErrors: [] };
      });
    },
  }),
);

builder.mutationField('serviceAccountUpdate', (t) =>
  t.field({
    type: ServiceAccountPayload,
    authScopes: { can: 'account:manage' },
    args: { input: t.arg({ type: ServiceAccountUpdateInput, required: true }) },
    resolve: async (_root, { input }, ctx) => {
      const refs = input.projectIds?.map(String);
      if (refs && refs.length > MAX_PROJECTS) return tooManyProjects();
      return mutate(ctx, async (em) => {
        const account = await accountById(em, String(input.id));
        if (refs) await setProjects(em, account, await resolveProjectIds(em, refs));
        if (input.enabled != null) {
          if (!input.enabled && account.id === ctx.viewer!.accountId) throw ServiceAccountError.cannotDisableSelf();
          await setEnabled(em, account, input.enabled);
        }
        auditAccountChange(em, ctx.viewer, 'service-account.update', account, { enabled: input.enabled ?? undefined, projectIds: refs ? account.projects.getItems().map((p) => p.id) : undefined });
        await em.flush();
        return { account, userErrors: [] };
      });
    },
  }),
);

builder.mutationField('serviceAccountRotateSecret', (t) =>
  t.field({
    type: ServiceAccountPayload,
    description: 'A new client secret; the old one and every token issued under it stop working at once',
    authScopes: { can: 'account:manage' },
    args: { input: t.arg({ type: ServiceAccountRotateSecretInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      mutate(ctx, async (em) => {
        const account = await accountById(em, String(input.id));
        const { clientSecret } = await rotateSecret(em, account);
        auditAccountChange(em, ctx.viewer, 'service-account.rotate-secret', account);
        await em.flush();
        return { account, clientSecret, userErrors: [] };
      }),
  }),
);

builder.queryField('serviceAccounts', (t) =>
  t.connection(
    {
      type: ServiceAccountRef,
      authScopes: { can: 'account:manage' },
      complexity: connectionComplexity,
      resolve: (_root, args, ctx) => keysetConnection(ctx, ServiceAccount, {}, args),
    },
    ...namedConnection('ServiceAccount'),
  ),
);
