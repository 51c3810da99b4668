// Environment (and an optional dotenv file) → typed, validated configuration. Every setting the
// service reads is named here, once, with what it means, what is allowed and its default; the
// README's "Configuration" table is generated from this list (test/config.test.ts keeps them equal).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseEnv } from 'node:util';
import { z } from 'zod';
import { parseMasterKey } from './db/secrets.ts';

/** A wrong setting: the message names the variable and what is allowed (the value too, unless secret). */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  ${p}`).join('\n')}`);
  }
}

/** What a setting accepts: the check, and the words for it in errors and in the README. */
type Kind<T> = { schema: z.ZodType<T, string>; allowed: string };

type Setting<T> = Kind<T> & {
  description: string;
  /** The value used when unset (parsed like a given one); none: optional. */
  default?: string;
  /** The default as the README shows it, when it is not a literal (a path, "generated"…). */
  shownDefault?: string;
  /** Never echoed in an error message. */
  secret?: boolean;
};

const setting = <T>(kind: Kind<T>, o: Omit<Setting<T>, keyof Kind<T>>): Setting<T> => ({ ...kind, ...o });

const integer = (min: number, max: number): Kind<number> => ({
  allowed: `an integer from ${min} to ${max}`,
  schema: z.string().trim().regex(/^\d+$/).transform(Number).refine((n) => n >= min && n <= max),
});
const oneOf = <const V extends readonly [string, ...string[]]>(values: V): Kind<V[number]> => ({ allowed: `one of ${values.join(', ')}`, schema: z.enum(values) });
const text = (allowed = 'a non-empty text'): Kind<string> => ({ allowed, schema: z.string().trim().min(1) });
const check = (ok: (s: string) => boolean, allowed: string): Kind<string> => ({ allowed, schema: z.string().refine(ok) });

/** A token bucket: `capacity` requests at once, refilled at `refillPerSecond` (see src/graphql/rate-limit.ts). */
export type Bucket = { capacity: number; refillPerSecond: number };

/** `CAPACITY:REFILL_PER_SECOND`, e.g. `300:30` (a burst of 300 requests, then 30 a second). */
const bucket: Kind<Bucket> = {
  allowed: 'CAPACITY:REFILL_PER_SECOND with both above zero (e.g. 300:30)',
  schema: z
    .string()
    .regex(/^\s*\d+\s*:\s*\d+(?:\.\d+)?\s*$/)
    .transform((v) => {
      const [capacity, refillPerSecond] = v.split(':').map(Number) as [number, number];
      return { capacity, refillPerSecond };
    })
    .refine((b) => b.capacity >= 1 && b.refillPerSecond > 0),
};

const isPostgresUrl = (s: string) => {
  try {
    return ['postgres:', 'postgresql:'].includes(new URL(s).protocol);
  } catch {
    return false;
  }
};
const isMasterKey = (s: string) => {
  try {
    return parseMasterKey(s).length === 32;
  } catch {
    return false;
  }
};

export const settings = {
  STRONGBOX_CONFIG_FILE: setting(text('a file path'), {
    description: 'A dotenv file (`NAME=value` lines) read at start; variables set in the environment override it. Only the names below are allowed in it.',
    shownDefault: 'none',
  }),
  DATABASE_URL: setting(check(isPostgresUrl, 'a postgres:// or postgresql:// URL'), {
    description: 'The PostgreSQL server. Unset: an embedded PostgreSQL under `STRONGBOX_DATA_DIR/postgres` (port 54329), stopped cleanly on shutdown.',
    shownDefault: 'embedded',
    secret: true,
  }),
  STRONGBOX_DATA_DIR: setting(text('a folder path'), {
    description: 'Data folder: embedded PostgreSQL, the generated master key, the demo cloud.',
    default: 'data',
    shownDefault: '`./data`',
  }),
  STRONGBOX_HOST: setting(text('a host name or IP address'), { description: 'Address the API listens on.', default: '127.0.0.1' }),
  STRONGBOX_PORT: setting(integer(0, 65535), { description: 'Port the API listens on (0: any free port).', default: '4000' }),
  STRONGBOX_MASTER_KEY: setting(check(isMasterKey, '32 bytes, as 64 hex digits or base64'), {
    description: 'Key that seals secrets at rest. Unset: generated into `STRONGBOX_DATA_DIR/master.key` on first start.',
    shownDefault: 'generated',
    secret: true,
  }),
  STRONGBOX_TOKEN_ISSUER: setting(text(), { description: 'Issuer (`iss`) of the service\'s JWTs.', default: 'strongbox' }),
  STRONGBOX_TOKEN_AUDIENCE: setting(text(), { description: 'Audience (`aud`) of the service\'s JWTs.', default: 'strongbox-api' }),
  STRONGBOX_TOKEN_TTL_SECONDS: setting(integer(30, 86400), { description: 'Lifetime of an access token, in seconds.', default: '900' }),
  STRONGBOX_LOG_LEVEL: setting(oneOf(['debug', 'info', 'warn', 'error']), { description: 'Least severe log level written.', default: 'info' }),
  STRONGBOX_LOG_FILE: setting(text('a file path'), {
    description: 'Append JSON log lines to this file instead of stdout.',
    shownDefault: 'stdout',
  }),
  OTEL_EXPORTER_OTLP_ENDPOINT: setting(check((s) => /^https?:\/\/[^\s]+$/.test(s), 'an http:// or https:// URL'), {
    description: 'OpenTelemetry collector: spans are exported over OTLP/HTTP to `<url>/v1/traces`. Unset: tracing is off (no-op tracer).',
    shownDefault: 'none (off)',
  }),
  OTEL_SERVICE_NAME: setting(text(), { description: '`service.name` of exported spans.', default: 'strongbox' }),
  STRONGBOX_PROXY_SERVER_ID: setting(text('a Nova server ID'), {
    description: 'Proxy VM of disk-attachment backups when neither the data mover\'s nor the cloud\'s node configuration names one.',
    shownDefault: 'none',
  }),
  STRONGBOX_METRICS_TOKEN: setting(check((s) => s.length >= 16, 'a text of at least 16 characters'), {
    description: 'When set, `GET /metrics` asks for it as a bearer token.',
    shownDefault: 'none (open)',
    secret: true,
  }),
  STRONGBOX_WORKER_METRICS_PORT: setting(integer(0, 65535), {
    description: '`worker` processes serve `/metrics`, `/healthz` and `/readyz` on this port (on `STRONGBOX_HOST`).',
    shownDefault: 'none (off)',
  }),
  STRONGBOX_RATE_LIMIT_ADMIN: setting(bucket, { description: 'Rate limit per ADMIN service account: a burst of CAPACITY GraphQL operations, then REFILL_PER_SECOND a second.', default: '2000:200' }),
  STRONGBOX_RATE_LIMIT_OPERATOR: setting(bucket, { description: 'The same, per OPERATOR account.', default: '2000:200' }),
  STRONGBOX_RATE_LIMIT_BILLING: setting(bucket, { description: 'The same, per BILLING account.', default: '1000:100' }),
  STRONGBOX_RATE_LIMIT_TENANT: setting(bucket, { description: 'The same, per TENANT account.', default: '1000:100' }),
  STRONGBOX_RATE_LIMIT_ANONYMOUS: setting(bucket, { description: 'The same, per remote address, for requests without a valid token and for /oauth/token requests.', default: '300:10' }),
  STRONGBOX_SHUTDOWN_GRACE_SECONDS: setting(integer(0, 3600), {
    description: 'On SIGTERM/SIGINT, how long running tasks may take to finish before they are handed back to another data mover (and in-flight HTTP requests to complete). The process exits at the latest 15 s after it.',
    default: '30',
  }),
};

export type SettingName = keyof typeof settings;
type Values = { [K in SettingName]: (typeof settings)[K] extends Setting<infer T> ? T : never };

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
  /** Fallback proxy VM of disk-attachment backups. */
  proxyServerId?: string;
  shutdownGraceSeconds: number;
  metricsToken?: string;
  workerMetricsPort?: number;
  rateLimits: RateLimits;
  logFile?: string;
  otlpEndpoint?: string;
  serviceName: string;
};

export type RateLimits = Record<'ADMIN' | 'OPERATOR' | 'BILLING' | 'TENANT' | 'ANONYMOUS', Bucket>;

/** The variables of `STRONGBOX_CONFIG_FILE` under those of `env`; an unreadable file or an unknown name is an error. */
function withConfigFile(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const file = env.STRONGBOX_CONFIG_FILE?.trim();
  if (!file) return env;
  let fromFile: NodeJS.Dict<string>;
  try {
    fromFile = parseEnv(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ConfigError([`STRONGBOX_CONFIG_FILE: must be a readable dotenv file, got ${JSON.stringify(file)} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`]);
  }
  const unknown = Object.keys(fromFile).filter((name) => !(name in settings) || name === 'STRONGBOX_CONFIG_FILE');
  if (unknown.length > 0) {
    throw new ConfigError(unknown.map((name) => `${name} (in ${file}): not a setting; allowed: ${Object.keys(settings).filter((n) => n !== 'STRONGBOX_CONFIG_FILE').join(', ')}`));
  }
  // An empty variable is unset (see loadConfig), so it does not hide the file's value either.
  return { ...fromFile, ...Object.fromEntries(Object.entries(env).filter(([, v]) => v !== '')) };
}

/** Reads and checks every setting; throws a ConfigError listing every wrong one. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const source = withConfigFile(env);
  const problems: string[] = [];
  const values: Record<string, unknown> = {};
  for (const [name, s] of Object.entries(settings) as [SettingName, Setting<unknown>][]) {
    // An empty value is unset (`FOO=` in a compose file).
    const given = source[name] === '' ? undefined : source[name];
    const raw = given ?? s.default;
    if (raw === undefined) continue;
    const parsed = s.schema.safeParse(raw);
    if (parsed.success) values[name] = parsed.data;
    else problems.push(`${name}: must be ${s.allowed}${s.secret ? '' : `, got ${JSON.stringify(raw)}`}`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  const v = values as Values;
  return {
    databaseUrl: v.DATABASE_URL,
    dataDir: path.resolve(v.STRONGBOX_DATA_DIR),
    host: v.STRONGBOX_HOST,
    port: v.STRONGBOX_PORT,
    masterKey: v.STRONGBOX_MASTER_KEY,
    tokenIssuer: v.STRONGBOX_TOKEN_ISSUER,
    tokenAudience: v.STRONGBOX_TOKEN_AUDIENCE,
    tokenTtlSeconds: v.STRONGBOX_TOKEN_TTL_SECONDS,
    logLevel: v.STRONGBOX_LOG_LEVEL,
    proxyServerId: v.STRONGBOX_PROXY_SERVER_ID,
    shutdownGraceSeconds: v.STRONGBOX_SHUTDOWN_GRACE_SECONDS,
    metricsToken: v.STRONGBOX_METRICS_TOKEN,
    workerMetricsPort: v.STRONGBOX_WORKER_METRICS_PORT,
    logFile: v.STRONGBOX_LOG_FILE,
    otlpEndpoint: v.OTEL_EXPORTER_OTLP_ENDPOINT,
    serviceName: v.OTEL_SERVICE_NAME,
    rateLimits: {
      ADMIN: v.STRONGBOX_RATE_LIMIT_ADMIN,
      OPERATOR: v.STRONGBOX_RATE_LIMIT_OPERATOR,
      BILLING: v.STRONGBOX_RATE_LIMIT_BILLING,
      TENANT: v.STRONGBOX_RATE_LIMIT_TENANT,
      ANONYMOUS: v.STRONGBOX_RATE_LIMIT_ANONYMOUS,
    },
  };
}

/** The README's configuration table (Markdown), from `settings`. */
export function configurationTable(): string {
  const rows = Object.entries(settings).map(([name, s]: [string, Setting<unknown>]) => {
    const shown = s.shownDefault ?? `\`${s.default}\``;
    return `| \`${name}\` | ${shown} | ${s.allowed} | ${s.description} |`;
  });
  return ['| Variable | Default | Allowed | Meaning |', '| --- | --- | --- | --- |', ...rows].join('\n');
}
