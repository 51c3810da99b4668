// Relay connections over MikroORM with keyset pagination by `id` (UUID v7, so id order is
// creation order): `first`/`after` forwards, `last`/`before` backwards, page size 1–100
// checked here (Pothos would silently cap), an opaque cursor, and an optional totalCount.
import type { Dictionary, EntityClass, FilterQuery } from '@mikro-orm/core';
import { GraphQLError } from 'graphql';
import type { Context } from './context.ts';
import { UUID } from './node.ts';

export const MAX_PAGE = 100;
export const DEFAULT_PAGE = 20;

export type PageArgs = { first?: number | null; after?: string | null; last?: number | null; before?: string | null };

function badInput(message: string) {
  return new GraphQLError(message, { extensions: { code: 'BAD_USER_INPUT' } });
}

export function encodeCursor(id: string): string {
  return Buffer.from(`cursor:${id}`, 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string, arg: string): string {
  const text = cursor.length <= 100 ? Buffer.from(cursor, 'base64url').toString('utf8') : '';
  const id = text.startsWith('cursor:') ? text.slice(7) : '';
  if (!UUID.test(id)) throw badInput(`${arg} is not a valid cursor`);
  return id;
}

/** Cost of a connection field: its page size times its selection (see limits.ts). */
export function connectionComplexity(args: PageArgs) {
  const size = args.first ?? args.last ?? DEFAULT_PAGE;
  return { field: 1, multiplier: Math.min(Math.max(size, 1), MAX_PAGE) };
}

/** Checks the paging arguments; a GraphQL error (nothing is read) when they are out of range. */
export function pageWindow(args: PageArgs): { size: number; forward: boolean; afterId?: string; beforeId?: string } {
  if (args.first != null && args.last != null) throw badInput('give either first or last, not both');
  for (const name of ['first', 'last'] as const) {
    const v = args[name];
    if (v != null && (!Number.isInteger(v) || v < 1 || v > MAX_PAGE)) throw badInput(`${name} must be between 1 and ${MAX_PAGE}, got ${v}`);
  }
  const forward = args.last == null;
  return {
    size: args.first ?? args.last ?? DEFAULT_PAGE,
    forward,
    afterId: args.after != null ? decodeCursor(args.after, 'after') : undefined,
    beforeId: args.before != null ? decodeCursor(args.before, 'before') : undefined,
  };
}

export type Page<T> = {
  edges: { cursor: string; node: T }[];
  pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null };
  totalCount: () => Promise<number>;
};

/**
 * One page of `entity` rows matching `where` (which must already carry the caller's scope),
 * oldest first (or `newestFirst`: `first` pages back in time), in one SELECT; `totalCount` runs a COUNT only when the field is asked for.
 */
export async function keysetConnection<T extends { id: string }>(
  ctx: Context,
  entity: EntityClass<T>,
  where: Dictionary,
  args: PageArgs,
  { newestFirst = false } = {},
): Promise<Page<T>> {
  const { size, forward, afterId, beforeId } = pageWindow(args);
  const idCond: Dictionary = {};
  if (afterId) idCond[newestFirst ? '$lt' : '$gt'] = afterId;
  if (beforeId) idCond[newestFirst ? '$gt' : '$lt'] = beforeId;
  const cond = Object.keys(idCond).length ? { $and: [where, { id: idCond }] } : where;
  const rows = (await ctx.em.find(entity, cond as FilterQuery<T>, {
    orderBy: { id: forward !== newestFirst ? 'asc' : 'desc' } as never,
    limit: size + 1,
  })) as T[];
  const more = rows.length > size;
  const page = rows.slice(0, size);
  if (!forward) page.reverse();
  const edges = page.map((node) => ({ cursor: encodeCursor(node.id), node }));
  return {
    edges,
    pageInfo: {
      hasNextPage: forward ? more : beforeId !== undefined,
      hasPreviousPage: forward ? afterId !== undefined : more,
      startCursor: edges[0]?.cursor ?? null,
      endCursor: edges.at(-1)?.cursor ?? null,
    },
    totalCount: () => ctx.em.count(entity, where as FilterQuery<T>),
  };
}

/** Second argument of `t.connection(…)`: adds `totalCount` to the connection type. */
/** Connection and edge options named as API.md names them (`InstanceConnection`, `InstanceEdge`), with totalCount. */
export function namedConnection(typeName: string) {
  return [{ name: `${typeName}Connection`, ...withTotalCount }, { name: `${typeName}Edge` }] as const;
}

export const withTotalCount = {
  fields: (t: any) => ({
    totalCount: t.int({
      description: 'How many objects match, over all pages (costs one COUNT)',
      resolve: (c: Page<unknown>) => c.totalCount(),
    }),
  }),
};
