// Idempotent trigger mutations: the same key from the same account within 24 h answers with the
// first result and starts nothing new; the same key with another request is refused.
// Concurrency: a transaction-scoped advisory lock on (account, key) makes simultaneous calls
// with one key run one after the other, so the second sees the first one's committed record;
// the unique (account_id, key) constraint is the backstop.
import { createHash } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { IdempotencyRecord } from '../db/entities/index.ts';
import { UserErrorException } from './user-errors.ts';

export const IDEMPOTENCY_WINDOW_MS = 24 * 60 * 60 * 1000;
export const MAX_KEY_LENGTH = 255;

/** JSON with sorted keys (and bigints as strings), so equal inputs hash equally. */
function canonical(value: unknown): string {
  if (typeof value === 'bigint') return JSON.stringify(value.toString());
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined && v !== null)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

export function requestHash(operation: string, input: Record<string, unknown>): string {
  const { idempotencyKey: _ignored, ...rest } = input;
  return createHash('sha256').update(`${operation}\n${canonical(rest)}`).digest('hex');
}

export const IdempotencyErrors = {
  reused: () =>
    UserErrorException.of('IDEMPOTENCY_KEY_REUSED', 'this idempotency key was used for a different request in the last 24 hours', ['input', 'idempotencyKey']),
  invalid: () => UserErrorException.of('INVALID', `idempotencyKey must be 1–${MAX_KEY_LENGTH} characters`, ['input', 'idempotencyKey']),
};

/**
 * Runs `work` in `em`'s transaction unless `key` already answered this request: then returns the
 * stored response instead. `work`'s result is stored with the key (JSON: IDs, not objects).
 * Throws UserErrorException for a reused key; `work` throwing rolls everything back, key included.
 */
export async function idempotent<R extends Record<string, unknown>>(
  em: EntityManager,
  args: { accountId: string; key: string | null | undefined; operation: string; input: Record<string, unknown> },
  work: () => Promise<R>,
): Promise<{ response: R; replayed: boolean }> {
  const { key } = args;
  if (key === null || key === undefined) return { response: await work(), replayed: false };
  if (key.length < 1 || key.length > MAX_KEY_LENGTH) throw IdempotencyErrors.invalid();
  const hash = requestHash(args.operation, args.input);
  await em.execute('select pg_advisory_xact_lock(hashtextextended(?, 0))', [`idempotency:${args.accountId}:${key}`]);
  const existing = await em.findOne(IdempotencyRecord, { accountId: args.accountId, key });
  if (existing && existing.createdAt.getTime() > Date.now() - IDEMPOTENCY_WINDOW_MS) {
    if (existing.requestHash !== hash) throw IdempotencyErrors.reused();
    return { response: existing.response as R, replayed: true };
  }
  if (existing) em.remove(existing); // expired: the key is free again
  const response = await work();
  em.create(IdempotencyRecord, { accountId: args.accountId, key, requestHash: hash, response });
  await em.flush();
  return { response, replayed: false };
}
