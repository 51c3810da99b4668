// Batched, scoped loading for the task/backup area, on top of node.ts/access.ts: a DataLoader
// per entity and per context (reset with the Pothos context cache, so each subscription event
// gets fresh ones). Every query carries the caller's predicate from access.ts as well as the
// ORM's fail-closed tenant filter; rows the caller may not read come back null.
import type { EntityClass, FilterQuery } from '@mikro-orm/core';
import { createContextCache } from '@pothos/core';
import DataLoader from 'dataloader';
import { Backup, BackupDisk, Restore } from '../../db/entities/index.ts';
import { readScope, type ReadableEntity } from '../access.ts';
import type { Context } from '../context.ts';
import { UUID } from '../node.ts';

const byIdLoaders = createContextCache((_ctx: Context) => new Map<string, DataLoader<string, unknown>>());

/** Loads a row of `entity` by primary key (batched per tick); null when absent or not readable. */
export function loadById<T extends { id: string }>(ctx: Context, entity: EntityClass<T>, id: string | null | undefined): Promise<T | null> {
  const name = entity.name as ReadableEntity;
  if (!id || !UUID.test(id)) return Promise.resolve(null);
  const loaders = byIdLoaders(ctx);
  let loader = loaders.get(name) as DataLoader<string, T | null> | undefined;
  if (!loader) {
    loader = new DataLoader<string, T | null>(async (ids) => {
      const scope = readScope(ctx, name);
      if (scope === null) return ids.map(() => null);
      const rows = await ctx.em.find(entity, { $and: [{ id: { $in: [...ids] } }, scope] } as unknown as FilterQuery<T>);
      const map = new Map(rows.map((r) => [r.id, r]));
      return ids.map((id) => map.get(id) ?? null);
    });
    loaders.set(name, loader as DataLoader<string, unknown>);
  }
  return loader.load(id);
}

/** The caller's predicate for `entity` as a where-clause part; matches nothing when it may read none. */
export function scopeWhere(ctx: Context, entity: ReadableEntity): Record<string, unknown> {
  return readScope(ctx, entity) ?? { id: { $in: [] } };
}

const disksLoaders = createContextCache(
  (ctx: Context) =>
    new DataLoader<string, BackupDisk[]>(async (backupIds) => {
      const rows = await ctx.em.find(BackupDisk, { $and: [{ backup: { $in: [...backupIds] } }, scopeWhere(ctx, 'BackupDisk')] }, { orderBy: { position: 'asc' } });
      return backupIds.map((id) => rows.filter((d) => d.backup.id === id));
    }),
);

export const loadBackupDisks = (ctx: Context, backupId: string) => disksLoaders(ctx).load(backupId);

const lastBackupLoaders = createContextCache(
  (ctx: Context) =>
    new DataLoader<string, Backup | null>(async (instanceIds) => {
      // One statement for the whole page: the newest AVAILABLE backup of each instance.
      const qb = ctx.em
        .createQueryBuilder(Backup, 'b')
        .select('*')
        .distinctOn(['b.instance'])
        .where({ $and: [{ instance: { $in: [...instanceIds] }, state: 'AVAILABLE' }, scopeWhere(ctx, 'Backup')] })
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
      const rows = await ctx.em.find(Restore, { $and: [{ task: { $in: [...taskIds] } }, scopeWhere(ctx, 'Restore')] });
      const map = new Map(rows.map((r) => [r.task!.id, r]));
      return taskIds.map((id) => map.get(id) ?? null);
    }),
);

export const loadRestoreOfTask = (ctx: Context, taskId: string) => restoreByTaskLoaders(ctx).load(taskId);
