// Service accounts through the API (ADMIN only). The client secret is in the payload once.
import { createServiceAccount, ServiceAccountError } from '../auth/service-accounts.ts';
import { Roles, ServiceAccount } from '../db/entities/index.ts';
import { builder } from './builder.ts';
import { UserErrorRef, type UserError } from './user-errors.ts';

export const RoleEnum = builder.enumType('Role', { values: Roles });

export const ServiceAccountRef = builder.objectRef<ServiceAccount>('ServiceAccount').implement({
  fields: (t) => ({
    name: t.exposeString('name'),
    role: t.field({ type: RoleEnum, resolve: (a) => a.role }),
    clientId: t.exposeString('clientId'),
    enabled: t.exposeBoolean('enabled'),
    createdAt: t.field({ type: 'DateTime', resolve: (a) => a.createdAt }),
  }),
});

const ServiceAccountCreateInput = builder.inputType('ServiceAccountCreateInput', {
  fields: (t) => ({
    name: t.string({ required: true }),
    role: t.field({ type: RoleEnum, required: true }),
    projectIds: t.idList({ description: 'Projects of a TENANT account (global IDs)' }),
  }),
});

type Payload = { account?: ServiceAccount; clientSecret?: string; userErrors: UserError[] };

const ServiceAccountPayload = builder.objectRef<Payload>('ServiceAccountPayload').implement({
  fields: (t) => ({
    serviceAccount: t.field({ type: ServiceAccountRef, nullable: true, resolve: (p) => p.account ?? null }),
    clientSecret: t.string({ nullable: true, description: 'Shown once; store it now', resolve: (p) => p.clientSecret ?? null }),
    userErrors: t.field({ type: [UserErrorRef], resolve: (p) => p.userErrors }),
  }),
});

builder.mutationField('serviceAccountCreate', (t) =>
  t.field({
    type: ServiceAccountPayload,
    authScopes: { role: ['ADMIN'] },
    args: { input: t.arg({ type: ServiceAccountCreateInput, required: true }) },
    resolve: async (_root, { input }, ctx): Promise<Payload> => {
      if (input.name.length < 1 || input.name.length > 200) {
        return { userErrors: [{ code: 'INVALID', field: ['input', 'name'], message: 'name must be 1–200 characters' }] };
      }
      const projectIds = (input.projectIds ?? []).map((id) => String(id));
      try {
        const created = await ctx.em.transactional((em) =>
          createServiceAccount(em as typeof ctx.em, { name: input.name, role: input.role, projectIds }),
        );
        return { account: created.account, clientSecret: created.clientSecret, userErrors: [] };
      } catch (e) {
        if (e instanceof ServiceAccountError) return { userErrors: [{ code: e.code, field: ['input', ...(e.field ?? [])], message: e.message }] };
        throw e;
      }
    },
  }),
);
