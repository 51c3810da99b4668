// Batched, scoped loading for the task/backup area: one DataLoader per entity and per context
// (reset with the Pothos context cache, so a subscription event gets fresh ones). Every query
// carries the caller's project predicate as well as the ORM's fail-closed tenant filter.
import { createContextCache } from '@pothos/core';
import type { EntityClass, FilterQuery } from '@mikro-orm/core';
import DataLoader from 'dataloader';
import { GraphQLError } from 'graphql';
import { Backup, BackupDisk, Restore } from '../../db/entities/index.ts';
import type { Context } from '../context.ts';

const ownedByProject = new Set(['Instance', 'Volume', 'Task', 'Backup', 'BackupDisk', 'Restore']);

/** The caller's project predicate for a project-owned entity (empty for unscoped callers). */
export function projectScope(ctx: Context, entityName: string): Record<string, unknown> {
  const ids = ctx.viewer ? ctx.viewer.projectIds : [];
  if (ids === null || !ownedByProject.has(entityName)) return {};
  return { project: { $in: ids } };
}

const byIdLoaders = createContextCache((ctx: Context) => new Map<string, DataLoader<string, unknown>>());

/** Loads rows of `entity` by primary key, batched per tick; rows the caller may not see are null. */
export function loadById<T extends { id: string }>(ctx: Context, entity: EntityClass<T>, id: string): Promise<T | null>;
export function loadById<T extends { id: string }>(ctx: Context, entity: EntityClass<T>, id: string | null | undefined): Promise<T | null>;
export function loadById<T extends { id: string }>(ctx: Context, entity: EntityClass<T>, id: string | null | undefined): Promise<T | null> {
  if (!id) return Promise.resolve(null);
  const loaders = byIdLoaders(ctx);
  let loader = loaders.get(entity.name) as DataLoader<string, T | null> | undefined;
  if (!loader) {
    loader = new DataLoader<string, T | null>(async (ids) => {
      const where = { id: { $in: [...ids] }, ...projectScope(ctx, entity.name) } as unknown as FilterQuery<T>;
      const rows = await ctx.em.find(entity, where);
      const map = new Map(rows.map((r) => [r.id, r]));
      return ids.map((id) => map.get(id) ?? null);
    });
    loaders.set(entity.name, loader as DataLoader<string, unknown>);
  }
  return loader.load(id);
}

const disksLoaders = createContextCache(
  (ctx: Context) =>
    new DataLoader<string, BackupDisk[]>(async (backupIds) => {
      const rows = await ctx.em.find(BackupDisk, { backup: { $in: [...backupIds] }, ...projectScope(ctx, 'BackupDisk') }, { orderBy: { position: 'asc' } });
      return backupIds.map((id) => rows.filter((d) => d.backup.id === id));
    }),
);

export const loadBackupDisks = (ctx: Context, backupId: string) => disksLoaders(ctx).load(backupId);

const lastBackupLoaders = createContextCache(
  (ctx: Context) =>
    new DataLoader<string, Backup | null>(async (instanceIds) => {
      // One statement for the page: the newest AVAILABLE backup of each instance.
      const qb = ctx.em
        .createQueryBuilder(Backup, 'b')
        .select('*')
        .distinctOn(['b.instance'])
        .where({ instance: { $in: [...instanceIds] }, state: 'AVAILABLE', ...projectScope(ctx, 'Backup') })
        .orderBy({ instance: 'asc', createdAt: 'desc' });
      await qb.applyFilters();
      const rows = await qb.getResult();
      const map = new Map(rows.map((b) => [b.instance.id, b]));
      return instanceIds.map((id) => map.get(id) ?? null);
    }),
);

export const loadLastBackup = (ctx: Context, instanceId: string) => lastBackupLoaders(ctx).load(instanceId);

const restoreByTaskLoaders = createContextCache(
  (ctx: Context) =>
    new DataLoader<string, Restore | null>(async (taskIds) => {
      const rows = await ctx.em.find(Restore, { task: { $in: [...taskIds] }, ...projectScope(ctx, 'Restore') });
      const map = new Map(rows.map((r) => [r.task!.id, r]));
      return taskIds.map((id) => map.get(id) ?? null);
    }),
);

export const loadRestoreOfTask = (ctx: Context, taskId: string) => restoreByTaskLoaders(ctx).load(taskId);

// ---- Connections: keyset pagination on the time-ordered UUID, newest first.

export type PageArgs = { first?: number | null; after?: string | null; last?: number | null; before?: string | null };

const CURSOR_PREFIX = 'cursor:';
const encodeCursor = (id: string) => Buffer.from(CURSOR_PREFIX + id).toString('base64url');
function decodeCursor(cursor: string): string {
  const s = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!s.startsWith(CURSOR_PREFIX) || !/^[0-9a-f-]{36}$/i.test(s.slice(CURSOR_PREFIX.length))) {
    throw new GraphQLError('invalid cursor', { extensions: { code: 'BAD_USER_INPUT' } });
  }
  return s.slice(CURSOR_PREFIX.length);
}

function pageSize(n: number | null | undefined, name: string): number | null {
  if (n === null || n === undefined) return null;
  if (!Number.isInteger(n) || n < 1 || n > 100) {
    throw new GraphQLError(`${name} must be between 1 and 100`, { extensions: { code: 'BAD_USER_INPUT' } });
  }
  return n;
}

/** A page of `entity` rows matching `where`, as a Relay connection (newest first). */
export async function paginate<T extends { id: string }>(ctx: Context, entity: EntityClass<T>, where: Record<string, unknown>, args: PageArgs) {
  const first = pageSize(args.first, 'first');
  const last = pageSize(args.last, 'last');
  if (first !== null && last !== null) throw new GraphQLError('give first or last, not both', { extensions: { code: 'BAD_USER_INPUT' } });
  const backward = last !== null;
  const size = (backward ? last : first) ?? 20;
  const idCond: Record<string, string> = {};
  if (args.after) idCond.$lt = decodeCursor(args.after);
  if (args.before) idCond.$gt = decodeCursor(args.before);
  const cond = { ...where, ...projectScope(ctx, entity.name), ...(Object.keys(idCond).length ? { id: idCond } : {}) } as FilterQuery<T>;
  const rows = await ctx.em.find(entity, cond, {
    orderBy: { id: backward ? 'asc' : 'desc' } as never,
    limit: size + 1,
  });
  const more = rows.length > size;
  const page = rows.slice(0, size);
  if (backward) page.reverse();
  return {
    edges: page.map((node) => ({ cursor: encodeCursor(node.id), node })),
    pageInfo: {
      hasNextPage: backward ? Boolean(args.before) : more,
      hasPreviousPage: backward ? more : Boolean(args.after),
      startCursor: page[0] ? encodeCursor(page[0].id) : null,
      endCursor: page.length ? encodeCursor(page[page.length - 1]!.id) : null,
    },
  };
}
