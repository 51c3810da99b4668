// Live task and quota events, over graphql-ws and SSE alike. Events come through the
// cross-process pub/sub; each is first filtered on its IDs against the caller's scope (cheap),
// then resolved with a fresh context — the account re-read (disabled → the subscription ends),
// a new scoped EntityManager fork (made only if a resolver needs it) and new loaders — so no
// event shows stale or foreign data. Subscribers of one event with the same viewer and selection
// share one execution (src/graphql/shared-subscription-results.ts).
import { initContextCache } from '@pothos/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { GraphQLError } from 'graphql';
import { viewerForAccount, type Viewer } from '../../auth/viewer.ts';
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

/**
 * The account re-read for one event, shared by every subscriber of that event in the process
 * (the pub/sub hands them all the same event object): with a thousand subscribers of one
 * account, an event reads the account once, not a thousand times. The next event reads it
 * again, so disabling an account or rotating its secret still takes effect at once.
 */
const accountOfEvent = new WeakMap<object, Map<string, Promise<Viewer | null>>>();

function recheckAccount(ctx: Context, event: object, accountId: string, generation: number | undefined): Promise<Viewer | null> {
  let checks = accountOfEvent.get(event);
  if (!checks) accountOfEvent.set(event, (checks = new Map()));
  const key = `${accountId}:${generation ?? ''}`;
  let viewer = checks.get(key);
  if (!viewer) {
    // Events that arrive while a read of the account is in flight share it (it started at most
    // one query's time before them); the next event after it completes reads again.
    viewer = accountReadsInFlight.get(key);
    if (!viewer) {
      const read = viewerForAccount(systemFork(ctx.services.orm), accountId, generation);
      accountReadsInFlight.set(key, read);
      const done = () => {
        if (accountReadsInFlight.get(key) === read) accountReadsInFlight.delete(key);
      };
      read.then(done, done);
      viewer = read;
    }
    checks.set(key, viewer);
  }
  return viewer;
}

const accountReadsInFlight = new Map<string, Promise<Viewer | null>>();

/**
 * The task row behind one event, read once for all the process's subscribers of that event
 * (the pub/sub hands every local subscriber the same event object). Each subscriber still
 * checks the row's project against its own scope before it sees it.
 */
const taskOfEvent = new WeakMap<TaskEvent, Promise<E.Task | null>>();

async function sharedTask(ctx: Context, event: TaskEvent): Promise<E.Task | null> {
  let row = taskOfEvent.get(event);
  if (!row) {
    row = systemFork(ctx.services.orm).findOne(E.Task, event.taskId);
    taskOfEvent.set(event, row);
  }
  const task = await row;
  return task && inScope(ctx, task.project?.id ?? null) ? task : null;
}

const progressOfEvent = new WeakMap<TaskEvent, TaskProgressShape>();

/** A fresh context for the next event, in place (the subscription holds on to this object). */
async function refreshContext(ctx: Context, event: object): Promise<void> {
  // A token's expiry (when the viewer carries it) ends the subscription like a disabled account.
  const expiresAt = (ctx.viewer as { expiresAt?: Date } | null)?.expiresAt;
  const expired = expiresAt !== undefined && expiresAt.getTime() <= Date.now();
  // Re-read the account: disabled, secret rotated or projects changed take effect at once.
  const checked = ctx.viewer && !expired ? await recheckAccount(ctx, event, ctx.viewer.accountId, ctx.viewer.tokenGeneration) : null;
  const viewer = checked ? { ...checked, ...(expiresAt ? { expiresAt } : {}) } : null;
  if (!viewer) throw new GraphQLError('authentication required', { extensions: { code: 'UNAUTHENTICATED' } });
  ctx.viewer = viewer;
  // A new scoped EntityManager for this event, forked only if a resolver asks for it: most
  // events (progress) resolve from the event and the shared task row, and a fork per subscriber
  // per event was a good part of the delivery cost.
  let em: EntityManager | undefined;
  Object.defineProperty(ctx, 'em', {
    configurable: true,
    enumerable: true,
    get: () => (em ??= createContext(ctx.services, viewer).em),
    set: (value: EntityManager) => {
      em = value;
    },
  });
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
          await refreshContext(ctx, r.value as object);
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
          // The same payload object for every subscriber of the event (see
          // shared-subscription-results.ts). The event's project passed this subscriber's scope
          // in the filter; the task row is read (once per event, scope-checked per subscriber)
          // only if the selection asks for it.
          let shape = progressOfEvent.get(event);
          if (!shape) progressOfEvent.set(event, (shape = { event, task: (c: Context) => sharedTask(c, event) }));
          return shape;
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
        (event) => sharedTask(ctx, event),
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
