// Per HTTP request: a request ID (the caller's X-Request-Id when it is a sane token, else a new
// one) that the work runs under and the response echoes, and one log line when it is answered:
// method, path, GraphQL operation, status, duration, account — never the token.
import { getOperationAST, type DocumentNode } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Viewer } from '../auth/viewer.ts';
import { logger } from './logger.ts';
import { acceptRequestId, log, newRequestId, withRequestId } from './request-context.ts';

type RequestRecord = { requestId: string; started: number; operation?: string; accountId?: string };

export const REQUEST_ID_HEADER = 'x-request-id';

export function operationName(document: DocumentNode | undefined, given?: string | null): string | undefined {
  if (given) return given;
  return document ? getOperationAST(document)?.name?.value : undefined;
}

export function requestLogging(): Plugin<{ viewer?: Viewer | null }> {
  const requests = new WeakMap<Request, RequestRecord>();
  const note = (args: { contextValue: unknown; document: DocumentNode; operationName?: string | null }) => {
    const ctx = args.contextValue as { request?: Request; viewer?: Viewer | null };
    const record = ctx.request && requests.get(ctx.request);
    if (!record) return;
    record.operation = operationName(args.document, args.operationName);
    record.accountId = ctx.viewer?.accountId;
  };
  return {
    instrumentation: {
      request({ request }, wrapped) {
        const requestId = acceptRequestId(request.headers.get(REQUEST_ID_HEADER)) ?? newRequestId();
        requests.set(request, { requestId, started: performance.now() });
        return withRequestId(requestId, wrapped);
      },
    },
    onExecute: ({ args }) => note(args),
    onSubscribe: ({ args }) => note(args),
    onResponse({ request, response }) {
      const record = requests.get(request);
      if (!record) return;
      response.headers.set(REQUEST_ID_HEADER, record.requestId);
      const url = new URL(request.url);
      const line = {
        requestId: record.requestId,
        method: request.method,
        path: url.pathname,
        operation: record.operation,
        status: response.status,
        durationMs: Math.round((performance.now() - record.started) * 10) / 10,
        accountId: record.accountId,
      };
      // The root logger with the ID in the line: this hook may run outside the request's context.
      if (response.status >= 500) logger.error(line, 'http request');
      else logger.info(line, 'http request');
    },
  };
}

/** yoga's own messages (masked unexpected errors above all) go to our logger. */
export const yogaLogger = {
  debug: (...args: unknown[]) => write('debug', args),
  info: (...args: unknown[]) => write('info', args),
  warn: (...args: unknown[]) => write('warn', args),
  error: (...args: unknown[]) => write('error', args),
};

function write(level: 'debug' | 'info' | 'warn' | 'error', args: unknown[]): void {
  const err = args.find((a) => a instanceof Error);
  const message = args.filter((a) => typeof a === 'string').join(' ') || (err as Error | undefined)?.message || 'graphql';
  log()[level](err ? { err } : {}, message);
}
