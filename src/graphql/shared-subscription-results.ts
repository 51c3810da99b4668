// One execution per event per (selection, variables, viewer) instead of one per subscriber.
//
// graphql's subscribe executes the subscription's selection set for every event and every
// subscriber. A thousand subscribers of fifty tasks with the same selection did the same work
// twenty times per event. This plugin replaces the subscribe function: the source stream is
// created as before (the field's `subscribe`, with its authorisation), and each event payload is
// executed once per key and the result shared by every subscriber with that key:
//   - the payload object itself (the task streams hand every subscriber of an event the SAME
//     payload object, see tasks/subscriptions.ts; anything else, e.g. an Error, is never shared);
//   - the document, operation name and variables;
//   - the viewer AS REFRESHED FOR THIS EVENT (account, token generation, role, projects): only
//     subscribers that would see exactly the same data share a result, and each subscriber's
//     account is still re-checked per event before its payload is produced.
// Results are kept in a WeakMap on the payload: they go with the event.
import { createSourceEventStream, execute, type DocumentNode, type ExecutionArgs, type ExecutionResult } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Context } from './context.ts';

const resultsOfPayload = new WeakMap<object, Map<string, Promise<ExecutionResult>>>();
const documentIds = new WeakMap<DocumentNode, number>();
let nextDocumentId = 0;

function documentId(document: DocumentNode): number {
  let id = documentIds.get(document);
  if (id === undefined) documentIds.set(document, (id = ++nextDocumentId));
  return id;
}

function viewerKey(ctx: Partial<Context> | undefined): string | null {
  const v = ctx?.viewer;
  if (!v) return null;
  return JSON.stringify([v.accountId, v.tokenGeneration ?? null, v.role, v.projectIds]);
}

function executeShared(args: ExecutionArgs, operationKey: string, payload: unknown): Promise<ExecutionResult> {
  const run = async () => (await execute({ ...args, rootValue: payload })) as ExecutionResult;
  const viewer = viewerKey(args.contextValue as Partial<Context>);
  if (typeof payload !== 'object' || payload === null || payload instanceof Error || viewer === null) return run();
  let results = resultsOfPayload.get(payload);
  if (!results) resultsOfPayload.set(payload, (results = new Map()));
  const key = `${operationKey}|${viewer}`;
  let result = results.get(key);
  if (!result) {
    result = run();
    results.set(key, result);
  }
  return result;
}

/** Maps a source stream through `fn`, passing return() through at once (unsubscribe ends it). */
function mapStream<T, R>(source: AsyncIterator<T>, fn: (value: T) => Promise<R>): AsyncIterableIterator<R> {
  const iterator: AsyncIterableIterator<R> = {
    async next() {
      const r = await source.next();
      if (r.done) return { value: undefined, done: true };
      return { value: await fn(r.value), done: false };
    },
    async return() {
      await source.return?.();
      return { value: undefined, done: true };
    },
    async throw(e?: unknown) {
      await source.return?.();
      throw e;
    },
    [Symbol.asyncIterator]: () => iterator,
  };
  return iterator;
}

export function sharedSubscriptionResults(): Plugin {
  return {
    onSubscribe({ setSubscribeFn }) {
      setSubscribeFn(async (args) => {
        const stream = await createSourceEventStream(args as ExecutionArgs);
        if (!(Symbol.asyncIterator in stream)) return stream as ExecutionResult;
        const a = args as ExecutionArgs;
        // The query text when the parser kept it, else the document object's identity.
        const document = a.document.loc?.source.body ?? `#${documentId(a.document)}`;
        const operationKey = `${document}|${a.operationName ?? ''}|${JSON.stringify(a.variableValues ?? {})}`;
        return mapStream((stream as AsyncIterable<unknown>)[Symbol.asyncIterator](), (payload) => executeShared(a, operationKey, payload));
      });
    },
  };
}
