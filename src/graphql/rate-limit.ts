// Rate limits per service account: a token bucket per account (capacity and refill by role,
// from the configuration), one token per GraphQL operation, over HTTP and graphql-ws alike, and
// per CSV export. Requests without a valid token, and token requests to /oauth/token, share a
// bucket per remote address (ANONYMOUS).
// The buckets live in this process: with several API processes, each keeps its own, so an
// account may reach the limit once per process.
import { GraphQLError } from 'graphql';
import type { Bucket, RateLimits } from '../config.ts';
import type { Viewer } from '../auth/viewer.ts';

/** Entries beyond which full buckets are forgotten (a full bucket is the same as none). */
const SWEEP_ABOVE = 10_000;

type State = { tokens: number; at: number };

export class RateLimiter {
  private readonly buckets = new Map<string, State>();

  constructor(
    private readonly limits: RateLimits,
    private readonly now: () => number = Date.now,
  ) {}

  /** Takes one token for the caller: null when granted, else the seconds until one is free. */
  take(viewer: Viewer | null, remoteAddress?: string | null): number | null {
    const key = viewer ? `account:${viewer.accountId}` : `address:${remoteAddress ?? 'unknown'}`;
    const limit = this.limits[viewer ? viewer.role : 'ANONYMOUS'];
    const now = this.now();
    const state = this.refilled(this.buckets.get(key), limit, now);
    if (state.tokens >= 1) {
      state.tokens -= 1;
      this.buckets.set(key, state);
      if (this.buckets.size > SWEEP_ABOVE) this.sweep(now);
      return null;
    }
    this.buckets.set(key, state);
    return Math.max(1, Math.ceil((1 - state.tokens) / limit.refillPerSecond));
  }

  private refilled(state: State | undefined, limit: Bucket, now: number): State {
    if (!state) return { tokens: limit.capacity, at: now };
    const tokens = Math.min(limit.capacity, state.tokens + ((now - state.at) / 1000) * limit.refillPerSecond);
    return { tokens, at: now };
  }

  private sweep(now: number) {
    const slowest = Math.min(...Object.values(this.limits).map((l) => l.refillPerSecond));
    const largest = Math.max(...Object.values(this.limits).map((l) => l.capacity));
    for (const [key, state] of this.buckets) {
      if (state.tokens + ((now - state.at) / 1000) * slowest >= largest) this.buckets.delete(key);
    }
  }
}

/**
 * The error a refused operation gets: `RATE_LIMITED` with `retryAfterSeconds`; over HTTP also
 * status 429 and a `Retry-After` header (yoga reads `extensions.http` and leaves it out of the body).
 */
export function rateLimited(retryAfterSeconds: number, overHttp = true): GraphQLError {
  const http = { status: 429, headers: { 'Retry-After': String(retryAfterSeconds) } };
  return new GraphQLError(`rate limit reached; retry in ${retryAfterSeconds} s`, {
    extensions: { code: 'RATE_LIMITED', retryAfterSeconds, ...(overHttp ? { http } : {}) },
  });
}

/** The same refusal for the routes answered outside GraphQL (token endpoint, CSV exports). */
export function rateLimitedResponse(retryAfterSeconds: number): Response {
  return new Response(JSON.stringify({ error: 'rate_limited', error_description: `rate limit reached; retry in ${retryAfterSeconds} s`, retry_after: retryAfterSeconds }), {
    status: 429,
    headers: { 'content-type': 'application/json', 'cache-control': 'no-store', 'Retry-After': String(retryAfterSeconds) },
  });
}
