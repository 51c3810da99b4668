// Live task and quota events, over graphql-ws and SSE alike. Events come through the
// cross-process pub/sub; each is first filtered on its IDs against the caller's scope (cheap),
// then resolved with a fresh context — the account re-read (disabled → the subscription ends),
// a new scoped EntityManager fork and new loaders — so no event shows stale or foreign data.
import { initContextCache } from '@pothos/core';
import { GraphQLError } from 'graphql';
import type { Viewer } from '../../auth/viewer.ts';
import * as E from '../../db/entities/index.ts';
import { systemFork } from '../../db/orm.ts';
import { Channels, type QuotaAlertEvent, type TaskEvent } from '../../events/channels.ts';
import { builder } from '../builder.ts';
import { createContext, type Context } from '../context.ts';
import { listRoles } from '../access.ts';
import { parseGlobalId } from '../node.ts';
import { TaskRef } from '../refs.ts';
import { loadById } from './loaders.ts';
import { QuotaAlertRef, TaskProgressRef, type QuotaAlertShape, type TaskProgressShape } from './types.ts';

builder.subscriptionType({});

const BUFFER = 50;

async function reloadViewer(ctx: Context, accountId: string): Promise<Viewer | null> {
  const account = await systemFork(ctx.services.orm).findOne(E.ServiceAccount, { id: accountId }, { populate: ['projects'] });
  if (!account?.enabled) return null;
  return {
    accountId: account.id,
    name: account.name,
    role: account.role,
    projectIds: account.role === 'TENANT' ? account.projects.getItems().map((p) => p.id) : null,
  };
}

/** A fresh context for the next event, in place (the subscription holds on to this object). */
async function refreshContext(ctx: Context): Promise<void> {
  // A token's expiry (when the viewer carries it) ends the subscription like a disabled account.
  const expiresAt = (ctx.viewer as { expiresAt?: Date } | null)?.expiresAt;
  const expired = expiresAt !== undefined && expiresAt.getTime() <= Date.now();
  const viewer = ctx.viewer && !expired ? await reloadViewer(ctx, ctx.viewer.accountId) : null;
  if (viewer && expiresAt) Object.assign(viewer, { expiresAt });
  if (!viewer) throw new GraphQLError('authentication required', { extensions: { code: 'UNAUTHENTICATED' } });
  const fresh = createContext(ctx.services, viewer);
  ctx.viewer = fresh.viewer;
  ctx.em = fresh.em;
  Object.assign(ctx, initContextCache());
}

function inScope(ctx: Context, projectId: string | null): boolean {
  const ids = ctx.viewer?.projectIds;
  if (ids === undefined) return false;
  return ids === null || (projectId !== null && ids.includes(projectId));
}

/**
 * Events of `channel` that pass `filter`, each mapped by `resolve` after a context refresh;
 * `null` from `resolve` drops the event. Written as a plain iterator (not an async generator)
 * so that unsubscribing ends it at once, even while it waits for the next event.
 */
async function eventStream<T, R>(ctx: Context, channel: string, filter: (e: T) => boolean, resolve: (e: T) => Promise<R | null>): Promise<AsyncIterableIterator<R | Error>> {
  const source = await ctx.services.pubsub.subscribe<T>(channel, { filter, bufferSize: BUFFER });
  let ended = false;
  const iterator: AsyncIterableIterator<R | Error> = {
    async next() {
      while (!ended) {
        const r = await source.next();
        if (r.done) break;
        try {
          await refreshContext(ctx);
          const value = await resolve(r.value);
          if (value !== null) return { value, done: false };
        } catch (e) {
          // One last result carrying the error (the field resolver throws it), then the end.
          ended = true;
          await source.return?.();
          return { value: e instanceof Error ? e : new Error(String(e)), done: false };
        }
      }
      return { value: undefined, done: true };
    },
    return: () => source.return!() as Promise<IteratorResult<R | Error>>,
    throw: (e) => source.throw!(e) as Promise<IteratorResult<R | Error>>,
    [Symbol.asyncIterator]: () => iterator,
  };
  return iterator;
}

/** Field resolvers pass results through and raise the stream's closing error. */
function payload<R>(value: R | Error): R {
  if (value instanceof Error) throw value;
  return value;
}

const notFound = (what: string) => new GraphQLError(`${what} not found`, { extensions: { code: 'NOT_FOUND' } });

builder.subscriptionFields((t) => ({
  taskProgress: t.field({
    type: TaskProgressRef,
    description: 'Progress of one task: phase, bytes, rate, ETA, state',
    authScopes: { role: listRoles('Task') },
    args: { taskId: t.arg.id({ required: true }) },
    subscribe: async (_root, args, ctx) => {
      // Not visible → an error and no events ("not found": no existence leak).
      const taskId = parseGlobalId(String(args.taskId), 'Task');
      if (!taskId || !(await loadById(ctx, E.Task, taskId.id))) throw notFound('task');
      return eventStream<TaskEvent, TaskProgressShape>(
        ctx,
        Channels.task,
        (e) => e.taskId === taskId.id && inScope(ctx, e.projectId),
        async (event) => {
          const task = await loadById(ctx, E.Task, event.taskId);
          return task ? { event, task } : null;
        },
      );
    },
    resolve: (p: TaskProgressShape | Error) => payload(p),
  }),
  taskUpdates: t.field({
    type: TaskRef,
    description: 'Every task the caller may see (or those of one project) when it is created or changes state or phase',
    authScopes: { role: listRoles('Task') },
    args: { projectId: t.arg.id() },
    subscribe: async (_root, args, ctx) => {
      const projectId = args.projectId != null ? parseGlobalId(String(args.projectId), 'Project') : null;
      if (args.projectId != null && (!projectId || !(await loadById(ctx, E.Project, projectId.id)))) throw notFound('project');
      return eventStream<TaskEvent, E.Task>(
        ctx,
        Channels.task,
        (e) => e.kind !== 'PROGRESS' && (!projectId || e.projectId === projectId.id) && inScope(ctx, e.projectId),
        (event) => loadById(ctx, E.Task, event.taskId),
      );
    },
    resolve: (task: E.Task | Error) => payload(task),
  }),
  quotaAlerts: t.field({
    type: QuotaAlertRef,
    description: 'Soft quota limits reached (a TENANT: in its projects)',
    authScopes: { authenticated: true },
    subscribe: (_root, _args, ctx) =>
      eventStream<QuotaAlertEvent, QuotaAlertShape>(
        ctx,
        Channels.quotaAlert,
        (e) => inScope(ctx, e.projectId),
        async (event) => {
          const project = await loadById(ctx, E.Project, event.projectId);
          if (!project) return null;
          return { event, project, quota: await loadById(ctx, E.Quota, event.quotaId) };
        },
      ),
    resolve: (alert: QuotaAlertShape | Error) => payload(alert),
  }),
}));
