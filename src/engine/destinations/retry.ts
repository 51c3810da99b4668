// Retries with exponential backoff and full jitter, shared by the object-store backends.
// The caller classifies errors: only transient ones (5xx, timeouts, broken connections) are
// retried; a missing key or a refused credential fails at once.
import { setTimeout as sleep } from 'node:timers/promises';

export type RetryPolicy = {
  /** Retries after the first attempt (0 = try once). */
  retries: number;
  baseDelayMs: number;
  maxDelayMs: number;
};

export const defaultRetryPolicy: RetryPolicy = { retries: 5, baseDelayMs: 200, maxDelayMs: 10_000 };

/** Full jitter: spreads retries of many parallel requests instead of hammering in lockstep. */
export function backoffDelay(policy: RetryPolicy, attempt: number): number {
  const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** attempt);
  return Math.round(Math.random() * cap);
}

/**
 * Runs `fn` until it succeeds, `isTransient(error)` is false, or the retries are spent;
 * then rethrows the last error unchanged (the caller turns it into a BackendError).
 */
export async function withRetries<T>(
  policy: RetryPolicy,
  isTransient: (error: unknown) => boolean,
  fn: (attempt: number) => Promise<T>,
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (error) {
      if (attempt >= policy.retries || !isTransient(error)) throw error;
      await sleep(backoffDelay(policy, attempt));
    }
  }
}

/** Error codes of Node sockets that mean "the connection broke", worth another try. */
const transientSocketCodes = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_SOCKET',
]);

export function isTransientNetworkError(error: unknown): boolean {
  const e = error as { code?: string; name?: string; message?: string } | null;
  if (!e) return false;
  if (e.code && transientSocketCodes.has(e.code)) return true;
  if (e.name === 'TimeoutError') return true;
  return e.message === 'aborted' || e.message === 'socket hang up';
}

/** Bounds how many operations run at once (the "thread count" of a destination). */
export class Semaphore {
  private waiting: Array<() => void> = [];
  private active = 0;
  constructor(private readonly limit: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

/** Runs `fn` over `items` with at most `limit` in flight; stops starting new ones after a failure. */
export async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < items.length) {
      const index = next++;
      try {
        results[index] = await fn(items[index], index);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  const outcomes = await Promise.allSettled(Array.from({ length: Math.min(limit, items.length) }, worker));
  const rejected = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
  if (rejected) throw rejected.reason;
  return results;
}
