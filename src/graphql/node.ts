// Relay plumbing: opaque global IDs, `node(id)` / `nodes(ids)`, and the scoped batch loader
// every node type uses. A malformed, unknown, wrong-type or foreign ID answers null — the same
// answer as "does not exist", so nothing leaks whether an object exists.
import type { EntityClass } from '@mikro-orm/core';
import { createContextCache } from '@pothos/core';
import DataLoader from 'dataloader';
import { GraphQLError } from 'graphql';
import { decodeGlobalID, encodeGlobalID, resolveNodes } from '@pothos/plugin-relay';
import { builder } from './builder.ts';
import type { Context } from './context.ts';
import { readScope, type ReadableEntity } from './access.ts';

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Node type names that `node(id)` may load (each area file registers its own). */
const nodeTypes = new Set<string>();
export function registerNodeType(typename: string) {
  nodeTypes.add(typename);
}

export type GlobalId = { typename: string; id: string };

/** Decodes a global ID; null when it is not one of ours (bad base64, unknown type, not a UUID). */
export function parseGlobalId(globalId: unknown, expectedType?: string): GlobalId | null {
  if (typeof globalId !== 'string' || globalId.length > 200) return null;
  let decoded: GlobalId;
  try {
    decoded = decodeGlobalID(globalId);
  } catch {
    return null;
  }
  if (!nodeTypes.has(decoded.typename) || !UUID.test(decoded.id)) return null;
  if (expectedType && decoded.typename !== expectedType) return null;
  return decoded;
}

export function toGlobalId(typename: string, id: string): string {
  return encodeGlobalID(typename, id);
}

/**
 * The batch load function of a node type: one SELECT per batch, through the caller's
 * tenant-filtered fork AND with the caller's predicate from access.ts (defence in depth).
 */
export function scopedLoad<T extends { id: string }>(entity: EntityClass<T>, name: ReadableEntity) {
  return async (ids: readonly string[], ctx: Context): Promise<T[]> => {
    const scope = readScope(ctx, name);
    const valid = ids.filter((id) => UUID.test(id));
    if (scope === null || valid.length === 0) return [];
    return (await ctx.em.find(entity, { $and: [{ id: { $in: valid } }, scope] } as never)) as T[];
  };
}

const NodeInterface = builder.nodeInterfaceRef();

builder.queryField('node', (t) =>
  t.field({
    type: NodeInterface,
    nullable: true,
    description: 'The object with this global ID, or null when it does not exist or is not visible to the caller',
    authScopes: { authenticated: true },
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_root, { id }, ctx, info) => {
      const [node] = await resolveNodes(builder, ctx, info, [parseGlobalId(String(id))]);
      return (node ?? null) as never;
    },
  }),
);

builder.queryField('nodes', (t) =>
  t.field({
    type: [NodeInterface],
    nullable: { list: false, items: true },
    description: 'The objects with these global IDs, in order; null for each that does not exist or is not visible',
    authScopes: { authenticated: true },
    args: { ids: t.arg.idList({ required: true }) },
    complexity: (args) => ({ field: 1, multiplier: Math.min(Math.max(args.ids.length, 1), 100) }),
    resolve: async (_root, { ids }, ctx, info) => {
      if (ids.length > 100) throw new GraphQLError('nodes takes at most 100 IDs', { extensions: { code: 'BAD_USER_INPUT' } });
      return (await resolveNodes(builder, ctx, info, ids.map((id) => parseGlobalId(String(id))))) as never;
    },
  }),
);

/**
 * Batched many-to-many lookups: for owner IDs, the IDs on the other side of a pivot table
 * (e.g. the projects a policy is visible to), one SELECT per batch.
 */
const pivotLoaders = createContextCache(() => new Map<string, DataLoader<string, string[]>>());

export function pivotIds(ctx: Context, table: string, ownerColumn: string, otherColumn: string, ownerId: string): Promise<string[]> {
  const loaders = pivotLoaders(ctx);
  const key = `${table}.${ownerColumn}`;
  let loader = loaders.get(key);
  if (!loader) {
    loader = new DataLoader<string, string[]>(async (owners) => {
      const knex = ctx.em.getKnex();
      const rows: Record<string, string>[] = await ctx.em.execute(
        knex(table).select(ownerColumn, otherColumn).whereIn(ownerColumn, [...owners]).orderBy(otherColumn),
      );
      return owners.map((o) => rows.filter((r) => r[ownerColumn] === o).map((r) => r[otherColumn]!));
    });
    loaders.set(key, loader);
  }
  return loader.load(ownerId);
}

/** The project IDs of a pivot the caller may see (a TENANT only its own). */
export async function visibleProjectIds(ctx: Context, table: string, ownerColumn: string, ownerId: string): Promise<string[]> {
  const ids = await pivotIds(ctx, table, ownerColumn, 'project_id', ownerId);
  const mine = ctx.viewer?.projectIds;
  return mine === null || mine === undefined ? (ctx.viewer ? ids : []) : ids.filter((id) => mine.includes(id));
}

/**
 * For a field whose type is a loadable node: returns the referenced row's ID (the foreign
 * key, no query), which the dataloader plugin turns into a batched, scoped load.
 */
export function viaLoader(ref: { id: string } | null | undefined): never {
  return (ref?.id ?? null) as never;
}
