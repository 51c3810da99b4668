// The request ID that follows the work: set where work enters (an HTTP request, a graphql-ws
// operation, a task a data mover picks up, a scheduler tick), carried by AsyncLocalStorage
// through every await, written on every log line, and sent to OpenStack as its global request ID.
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import { v5 as uuidv5, validate as isUuid } from 'uuid';
import { logger, type Logger } from './logger.ts';

export type RequestContext = { requestId: string; log: Logger };

const storage = new AsyncLocalStorage<RequestContext>();

export function newRequestId(): string {
  return randomUUID();
}

/** An incoming X-Request-Id is kept only if it is a plain token (it ends up in logs and headers). */
export function acceptRequestId(header: string | null | undefined): string | undefined {
  return header && /^[A-Za-z0-9._:-]{8,128}$/.test(header) ? header : undefined;
}

/** Runs `fn` with `requestId` as the current request (and a logger that writes it on every line). */
export function withRequestId<T>(requestId: string, fn: () => T, bindings: Record<string, unknown> = {}): T {
  return storage.run({ requestId, log: logger.child({ requestId, ...bindings }) }, fn);
}

export function currentRequestId(): string | undefined {
  return storage.getStore()?.requestId;
}

/** The logger for the current work: the request's child, or the root outside any request. */
export function log(): Logger {
  return storage.getStore()?.log ?? logger;
}

// Any fixed namespace: a non-UUID request ID maps to the same UUID every time.
const NAMESPACE = '2f0c4b1e-7d4a-4f61-9a57-5c3e1b0d8a42';

/**
 * OpenStack's global request ID for a request ID: oslo.middleware accepts an inbound
 * `X-OpenStack-Request-ID` only in the form `req-<uuid>`, so other IDs are mapped to a UUID.
 */
export function openStackGlobalRequestId(requestId: string): string {
  return `req-${isUuid(requestId) ? requestId.toLowerCase() : uuidv5(requestId, NAMESPACE)}`;
}
