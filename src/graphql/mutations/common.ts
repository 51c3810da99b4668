// What every admin mutation shares: input validation with zod (refusals become userErrors),
// one transaction that either commits everything plus an audit entry or changes nothing,
// references given as global IDs loaded through the caller's scope, and payload types.
import { ForeignKeyConstraintViolationException, UniqueConstraintViolationException, type EntityClass } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { z } from 'zod';
import { AuditEntry } from '../../db/entities/index.ts';
import type { ReadableEntity } from '../access.ts';
import { builder } from '../builder.ts';
import type { Context } from '../context.ts';
import { parseGlobalId, scopedLoad, toGlobalId } from '../node.ts';
import { UserErrorException, UserErrorRef, type UserError } from '../user-errors.ts';

export { z };

/** Parses `input` with `schema`; every problem becomes a userError INVALID at its field path. */
export function validate<S extends z.ZodType>(schema: S, input: unknown): z.infer<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  throw new UserErrorException(
    result.error.issues.map((issue) => ({ code: 'INVALID', field: ['input', ...issue.path.map(String)], message: issue.message })),
  );
}

/** Loads the object a global ID names, through the caller's scope; a userError NOT_FOUND otherwise. */
export async function loadRef<T extends { id: string }>(
  em: EntityManager,
  ctx: Context,
  entity: EntityClass<T>,
  typename: ReadableEntity,
  globalId: unknown,
  field: string[],
): Promise<T> {
  const parsed = parseGlobalId(globalId, typename);
  const [row] = parsed ? await scopedLoad(entity, typename)([parsed.id], { ...ctx, em }) : [];
  if (!row) throw UserErrorException.of('NOT_FOUND', `no ${typename} with id ${JSON.stringify(String(globalId).slice(0, 100))}`, ['input', ...field]);
  return row;
}

/** Loads many; the first unknown one is a userError NOT_FOUND. Keeps the given order, drops repeats. */
export async function loadRefs<T extends { id: string }>(
  em: EntityManager,
  ctx: Context,
  entity: EntityClass<T>,
  typename: ReadableEntity,
  globalIds: readonly unknown[],
  field: string[],
): Promise<T[]> {
  const parsed = globalIds.map((g) => parseGlobalId(g, typename));
  const rows = await scopedLoad(entity, typename)([...new Set(parsed.filter((p) => p).map((p) => p!.id))], { ...ctx, em });
  const byId = new Map(rows.map((r) => [r.id, r]));
  const out: T[] = [];
  for (let i = 0; i < globalIds.length; i++) {
    const row = parsed[i] ? byId.get(parsed[i]!.id) : undefined;
    if (!row) throw UserErrorException.of('NOT_FOUND', `no ${typename} with id ${JSON.stringify(String(globalIds[i]).slice(0, 100))}`, ['input', ...field, String(i)]);
    if (!out.includes(row)) out.push(row);
  }
  return out;
}

export type Audit = { action: string; objectType: string; objectId: string; details?: Record<string, unknown> };

/**
 * Runs `work` in one transaction on the caller's fork and writes its audit entry there too.
 * A UserErrorException (or a unique-name clash) rolls everything back and becomes userErrors.
 */
export async function mutate<R extends object>(
  ctx: Context,
  work: (em: EntityManager) => Promise<{ result: R; audit: Audit }>,
): Promise<R & { userErrors: UserError[] }> {
  try {
    const result = await ctx.em.transactional(async (em) => {
      const { result, audit } = await work(em as EntityManager);
      em.create(AuditEntry, {
        accountId: ctx.viewer?.accountId,
        accountName: ctx.viewer?.name,
        action: audit.action,
        objectType: audit.objectType,
        objectId: audit.objectId,
        details: audit.details ?? {},
      });
      await em.flush();
      return result;
    });
    return { ...result, userErrors: [] };
  } catch (e) {
    if (e instanceof UserErrorException) return { userErrors: e.errors } as R & { userErrors: UserError[] };
    if (e instanceof UniqueConstraintViolationException) {
      return { userErrors: [{ code: 'NAME_TAKEN', field: ['input', 'name'], message: 'an object with this name exists' }] } as R & { userErrors: UserError[] };
    }
    if (e instanceof ForeignKeyConstraintViolationException) {
      return { userErrors: [{ code: 'IN_USE', field: ['input', 'id'], message: 'the object is still in use' }] } as R & { userErrors: UserError[] };
    }
    throw e;
  }
}

/** A payload type `<name>` with one nullable object field plus userErrors. */
export function payload(name: string, field: string, ref: any, description?: string) {
  return builder.objectRef<{ userErrors: UserError[] } & Record<string, unknown>>(name).implement({
    description,
    fields: (t) => ({
      [field]: t.field({ type: ref, nullable: true, resolve: (p) => (p[field] ?? null) as never }),
      userErrors: t.field({ type: [UserErrorRef], resolve: (p) => p.userErrors }),
    }),
  });
}

/** The payload of every …Delete mutation: the deleted object's global ID. */
export const DeletePayload = builder.objectRef<{ deletedId?: string; userErrors: UserError[] }>('DeletePayload').implement({
  fields: (t) => ({
    deletedId: t.id({ nullable: true, resolve: (p) => p.deletedId ?? null }),
    userErrors: t.field({ type: [UserErrorRef], resolve: (p) => p.userErrors }),
  }),
});

export const DeleteInput = builder.inputType('DeleteInput', {
  fields: (t) => ({ id: t.id({ required: true }) }),
});

/** `<field>(input: {id})`: deletes one named configuration object (ADMIN), audited. */
export function deleteMutation<T extends { id: string; name: string }>(field: string, entity: EntityClass<T>, typename: ReadableEntity, description?: string) {
  builder.mutationField(field, (t) =>
    t.field({
      type: DeletePayload,
      description,
      authScopes: { can: 'config:write' },
      args: { input: t.arg({ type: DeleteInput, required: true }) },
      resolve: (_root, { input }, ctx) =>
        mutate(ctx, async (em) => {
          const row = await loadRef(em, ctx, entity, typename, input.id, ['id']);
          await em.nativeDelete(entity, { id: row.id } as never);
          return {
            result: { deletedId: toGlobalId(typename, row.id) },
            audit: { action: field, objectType: typename, objectId: row.id, details: { name: row.name } },
          };
        }),
    }),
  );
}

// Common field rules.
export const name = z.string().trim().min(1, 'must not be empty').max(200, 'at most 200 characters');
export const shortText = z.string().max(255, 'at most 255 characters');
export const secret = z.string().min(1, 'must not be empty').max(16_384, 'at most 16384 characters');
export const idList = z.array(z.string()).max(500, 'at most 500 IDs');
