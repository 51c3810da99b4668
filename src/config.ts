// Environment → typed, validated configuration. Everything the service reads from the
// environment is named here, once.
import path from 'node:path';
import { z } from 'zod';

/** A token bucket: `capacity` requests at once, refilled at `refillPerSecond` (see src/graphql/rate-limit.ts). */
export type Bucket = { capacity: number; refillPerSecond: number };

/** `CAPACITY:REFILL_PER_SECOND`, e.g. `300:30` (a burst of 300 requests, then 30 a second). */
const bucket = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((v, ctx): Bucket => {
      const m = /^\s*(\d+)\s*:\s*(\d+(?:\.\d+)?)\s*$/.exec(v);
      const capacity = m ? Number(m[1]) : NaN;
      const refillPerSecond = m ? Number(m[2]) : NaN;
      if (!(capacity >= 1 && refillPerSecond > 0)) {
        ctx.addIssue({ code: 'custom', message: `expected CAPACITY:REFILL_PER_SECOND with both above zero (e.g. 300:30), got ${JSON.stringify(v)}` });
        return z.NEVER;
      }
      return { capacity, refillPerSecond };
    });

const schema = z.object({
  DATABASE_URL: z.string().url().optional(),
  STRONGBOX_DATA_DIR: z.string().default(path.resolve('data')),
  STRONGBOX_HOST: z.string().default('127.0.0.1'),
  STRONGBOX_PORT: z.coerce.number().int().min(0).max(65535).default(4000),
  /** 32 bytes, base64 or hex; generated into the data folder on first start when unset. */
  STRONGBOX_MASTER_KEY: z.string().optional(),
  /** Issuer and audience of the service's JWTs. */
  STRONGBOX_TOKEN_ISSUER: z.string().default('strongbox'),
  STRONGBOX_TOKEN_AUDIENCE: z.string().default('strongbox-api'),
  STRONGBOX_TOKEN_TTL_SECONDS: z.coerce.number().int().min(30).max(86400).default(900),
  STRONGBOX_LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
  /** Rate limits per service account, by role; ANONYMOUS: requests without a valid token, per remote address. */
  STRONGBOX_RATE_LIMIT_ADMIN: bucket('2000:200'),
  STRONGBOX_RATE_LIMIT_OPERATOR: bucket('2000:200'),
  STRONGBOX_RATE_LIMIT_BILLING: bucket('1000:100'),
  STRONGBOX_RATE_LIMIT_TENANT: bucket('1000:100'),
  STRONGBOX_RATE_LIMIT_ANONYMOUS: bucket('300:10'),
});

export type RateLimits = Record<'ADMIN' | 'OPERATOR' | 'BILLING' | 'TENANT' | 'ANONYMOUS', Bucket>;

export type Config = {
  databaseUrl?: string;
  dataDir: string;
  host: string;
  port: number;
  masterKey?: string;
  tokenIssuer: string;
  tokenAudience: string;
  tokenTtlSeconds: number;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  rateLimits: RateLimits;
};

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new Error(`invalid configuration: ${problems}`);
  }
  const e = parsed.data;
  return {
    databaseUrl: e.DATABASE_URL,
    dataDir: path.resolve(e.STRONGBOX_DATA_DIR),
    host: e.STRONGBOX_HOST,
    port: e.STRONGBOX_PORT,
    masterKey: e.STRONGBOX_MASTER_KEY,
    tokenIssuer: e.STRONGBOX_TOKEN_ISSUER,
    tokenAudience: e.STRONGBOX_TOKEN_AUDIENCE,
    tokenTtlSeconds: e.STRONGBOX_TOKEN_TTL_SECONDS,
    logLevel: e.STRONGBOX_LOG_LEVEL,
    rateLimits: {
      ADMIN: e.STRONGBOX_RATE_LIMIT_ADMIN,
      OPERATOR: e.STRONGBOX_RATE_LIMIT_OPERATOR,
      BILLING: e.STRONGBOX_RATE_LIMIT_BILLING,
      TENANT: e.STRONGBOX_RATE_LIMIT_TENANT,
      ANONYMOUS: e.STRONGBOX_RATE_LIMIT_ANONYMOUS,
    },
  };
}
