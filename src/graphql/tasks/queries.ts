// Root lists `tasks` and `backups` (keyset connections like every list: oldest first with
// `first`/`after`, newest first with `last`/`before`), with filters, and the Instance fields that
// point at them (`lastBackup`, `backups`, `tasks`).
import { GraphQLError } from 'graphql';
import * as E from '../../db/entities/index.ts';
import { listRoles } from '../access.ts';
import { builder } from '../builder.ts';
import { connectionComplexity, keysetConnection, withTotalCount } from '../connections.ts';
import type { Context } from '../context.ts';
import { idFilter } from '../filters.ts';
import { parseGlobalId } from '../node.ts';
import { BackupRef, InstanceRef, TaskRef } from '../refs.ts';
import { loadLastBackup, scopeWhere } from './loaders.ts';
import { BackupStateEnum, BackupTypeEnum, TaskStateEnum, TaskTypeEnum } from './types.ts';

const TaskFilter = builder.inputType('TaskFilter', {
  fields: (t) => ({
    projectId: t.id(),
    instanceId: t.id(),
    states: t.field({ type: [TaskStateEnum] }),
    types: t.field({ type: [TaskTypeEnum] }),
    createdAfter: t.field({ type: 'DateTime', description: 'Created at or after' }),
    createdBefore: t.field({ type: 'DateTime', description: 'Created before' }),
  }),
});

const BackupFilter = builder.inputType('BackupFilter', {
  fields: (t) => ({
    projectId: t.id(),
    instanceId: t.id(),
    states: t.field({ type: [BackupStateEnum] }),
    types: t.field({ type: [BackupTypeEnum] }),
    createdAfter: t.field({ type: 'DateTime', description: 'Created at or after' }),
    createdBefore: t.field({ type: 'DateTime', description: 'Created before' }),
  }),
});

// Named as API.md names them, and shared by the root lists and the Instance fields.
const TaskConnection = builder.connectionObject({ type: TaskRef, name: 'TaskConnection', ...withTotalCount }, { name: 'TaskEdge' });
const BackupConnection = builder.connectionObject({ type: BackupRef, name: 'BackupConnection', ...withTotalCount }, { name: 'BackupEdge' });

type CommonFilter = {
  projectId?: string | number | null;
  instanceId?: string | number | null;
  states?: readonly string[] | null;
  types?: readonly string[] | null;
  createdAfter?: Date | null;
  createdBefore?: Date | null;
};

function checkList(list: readonly string[] | null | undefined, name: string) {
  if (list && list.length > 20) throw new GraphQLError(`${name}: at most 20 values`, { extensions: { code: 'BAD_USER_INPUT' } });
}

/** Filter conditions; an unknown, wrong-type or foreign ID matches nothing (the scope is added too). */
function conditions(filter: CommonFilter | null | undefined): Record<string, unknown>[] {
  if (!filter) return [];
  checkList(filter.states, 'states');
  checkList(filter.types, 'types');
  const where: Record<string, unknown>[] = [];
  if (filter.projectId != null) where.push({ project: idFilter(parseGlobalId(String(filter.projectId), 'Project')) });
  if (filter.instanceId != null) where.push({ instance: idFilter(parseGlobalId(String(filter.instanceId), 'Instance')) });
  if (filter.states?.length) where.push({ state: { $in: filter.states } });
  if (filter.types?.length) where.push({ type: { $in: filter.types } });
  if (filter.createdAfter) where.push({ createdAt: { $gte: filter.createdAfter } });
  if (filter.createdBefore) where.push({ createdAt: { $lt: filter.createdBefore } });
  return where;
}

builder.queryFields((t) => ({
  tasks: t.connection(
    {
      type: TaskRef,
      description: 'Tasks the caller may see',
      authScopes: { role: listRoles('Task') },
      complexity: connectionComplexity,
      args: { filter: t.arg({ type: TaskFilter }) },
      resolve: (_root, args, ctx) => keysetConnection(ctx, E.Task, { $and: [scopeWhere(ctx, 'Task'), ...conditions(args.filter)] }, args),
    },
    TaskConnection,
  ),
  backups: t.connection(
    {
      type: BackupRef,
      description: 'Backups the caller may see',
      authScopes: { role: listRoles('Backup') },
      complexity: connectionComplexity,
      args: { filter: t.arg({ type: BackupFilter }) },
      resolve: (_root, args, ctx) => keysetConnection(ctx, E.Backup, { $and: [scopeWhere(ctx, 'Backup'), ...conditions(args.filter)] }, args),
    },
    BackupConnection,
  ),
}));

builder.objectFields(InstanceRef, (t) => ({
  lastBackup: t.field({
    type: BackupRef,
    nullable: true,
    description: 'The newest AVAILABLE backup (batched: one statement per page of instances)',
    authScopes: { role: listRoles('Backup') },
    resolve: (instance, _args, ctx: Context) => loadLastBackup(ctx, instance.id),
  }),
  backups: t.connection(
    {
      type: BackupRef,
      authScopes: { role: listRoles('Backup') },
      complexity: connectionComplexity,
      resolve: (instance, args, ctx: Context) => keysetConnection(ctx, E.Backup, { $and: [scopeWhere(ctx, 'Backup'), { instance: instance.id }] }, args),
    },
    BackupConnection,
  ),
  tasks: t.connection(
    {
      type: TaskRef,
      authScopes: { role: listRoles('Task') },
      complexity: connectionComplexity,
      resolve: (instance, args, ctx: Context) => keysetConnection(ctx, E.Task, { $and: [scopeWhere(ctx, 'Task'), { instance: instance.id }] }, args),
    },
    TaskConnection,
  ),
}));
