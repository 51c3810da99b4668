// Root lists `tasks` and `backups` (newest first, with filters), and the Instance fields that
// point at them (`lastBackup`, `backups`, `tasks`).
import { GraphQLError } from 'graphql';
import * as E from '../../db/entities/index.ts';
import { builder } from '../builder.ts';
import type { Context } from '../context.ts';
import { BackupRef, InstanceRef, ProjectRef, TaskRef } from '../refs.ts';
import { loadLastBackup, paginate } from './loaders.ts';
import { BackupStateEnum, BackupTypeEnum, TaskStateEnum, TaskTypeEnum } from './types.ts';

/** Tasks are operations data: BILLING sees usage and reports only. */
export const taskReaders: E.Role[] = ['ADMIN', 'OPERATOR', 'TENANT'];
/** Backups carry the figures billing aggregates. */
const backupReaders: E.Role[] = ['ADMIN', 'OPERATOR', 'TENANT', 'BILLING'];

const connectionComplexity = (args: { first?: number | null; last?: number | null }) => ({ field: 1, multiplier: args.first ?? args.last ?? 20 });

const TaskFilter = builder.inputType('TaskFilter', {
  fields: (t) => ({
    projectId: t.globalID({ for: ProjectRef }),
    instanceId: t.globalID({ for: InstanceRef }),
    states: t.field({ type: [TaskStateEnum] }),
    types: t.field({ type: [TaskTypeEnum] }),
    createdAfter: t.field({ type: 'DateTime' }),
    createdBefore: t.field({ type: 'DateTime' }),
  }),
});

const BackupFilter = builder.inputType('BackupFilter', {
  fields: (t) => ({
    projectId: t.globalID({ for: ProjectRef }),
    instanceId: t.globalID({ for: InstanceRef }),
    states: t.field({ type: [BackupStateEnum] }),
    types: t.field({ type: [BackupTypeEnum] }),
    createdAfter: t.field({ type: 'DateTime' }),
    createdBefore: t.field({ type: 'DateTime' }),
  }),
});

type CommonFilter = {
  projectId?: { id: string } | null;
  instanceId?: { id: string } | null;
  states?: readonly string[] | null;
  types?: readonly string[] | null;
  createdAfter?: Date | null;
  createdBefore?: Date | null;
};

function checkList(list: readonly string[] | null | undefined, name: string) {
  if (list && list.length > 20) throw new GraphQLError(`${name}: at most 20 values`, { extensions: { code: 'BAD_USER_INPUT' } });
}

function whereOf(filter: CommonFilter | null | undefined): Record<string, unknown> {
  if (!filter) return {};
  checkList(filter.states, 'states');
  checkList(filter.types, 'types');
  const where: Record<string, unknown> = {};
  // A project outside the caller's scope simply matches nothing (the scope predicate is added too).
  if (filter.projectId) where.project = filter.projectId.id;
  if (filter.instanceId) where.instance = filter.instanceId.id;
  if (filter.states?.length) where.state = { $in: filter.states };
  if (filter.types?.length) where.type = { $in: filter.types };
  const createdAt: Record<string, Date> = {};
  if (filter.createdAfter) createdAt.$gte = filter.createdAfter;
  if (filter.createdBefore) createdAt.$lt = filter.createdBefore;
  if (Object.keys(createdAt).length) where.createdAt = createdAt;
  return where;
}

builder.queryFields((t) => ({
  tasks: t.connection({
    type: TaskRef,
    description: 'Tasks the caller may see, newest first',
    authScopes: { role: taskReaders },
    complexity: connectionComplexity,
    args: { filter: t.arg({ type: TaskFilter }) },
    resolve: (_root, args, ctx) => paginate(ctx, E.Task, whereOf(args.filter), args),
  }),
  backups: t.connection({
    type: BackupRef,
    description: 'Backups the caller may see, newest first',
    authScopes: { role: backupReaders },
    complexity: connectionComplexity,
    args: { filter: t.arg({ type: BackupFilter }) },
    resolve: (_root, args, ctx) => paginate(ctx, E.Backup, whereOf(args.filter), args),
  }),
}));

builder.objectFields(InstanceRef, (t) => ({
  lastBackup: t.field({
    type: BackupRef,
    nullable: true,
    description: 'The newest available backup',
    authScopes: { role: backupReaders },
    resolve: (instance, _args, ctx: Context) => loadLastBackup(ctx, instance.id),
  }),
  backups: t.connection({
    type: BackupRef,
    authScopes: { role: backupReaders },
    complexity: connectionComplexity,
    resolve: (instance, args, ctx: Context) => paginate(ctx, E.Backup, { instance: instance.id }, args),
  }),
  tasks: t.connection({
    type: TaskRef,
    authScopes: { role: taskReaders },
    complexity: connectionComplexity,
    resolve: (instance, args, ctx: Context) => paginate(ctx, E.Task, { instance: instance.id }, args),
  }),
}));
