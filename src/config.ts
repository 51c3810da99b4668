// Environment → typed, validated configuration. Everything the service reads from the
// environment is named here, once.
import path from 'node:path';
import { z } from 'zod';

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
  /** Log lines go to this file (appended) instead of stdout. */
  STRONGBOX_LOG_FILE: z.string().optional(),
  /** OTLP/HTTP collector (e.g. http://collector:4318): traces are exported there; unset, tracing is off. */
  OTEL_EXPORTER_OTLP_ENDPOINT: z.string().url().optional(),
  /** The service name traces carry. */
  OTEL_SERVICE_NAME: z.string().default('strongbox'),
});

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
  logFile?: string;
  /** Where traces go (OTLP over HTTP); undefined: tracing off. */
  otlpEndpoint?: string;
  serviceName: string;
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
    logFile: e.STRONGBOX_LOG_FILE,
    otlpEndpoint: e.OTEL_EXPORTER_OTLP_ENDPOINT,
    serviceName: e.OTEL_SERVICE_NAME,
  };
}
