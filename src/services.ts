// The long-lived parts one process shares: database, secrets, tokens. Built once at start by
// `serve`/`worker`, and by tests around a test database.
import type { Config } from './config.ts';
import { openDatabase, type Database } from './db/database.ts';
import { openOrm, systemFork, type Orm } from './db/orm.ts';
import { loadMasterKey, SecretBox } from './db/secrets.ts';
import { TokenService } from './auth/tokens.ts';
import { PgPubSub } from './events/pubsub.ts';
import type { UsageRecorder } from './engine/usage.ts';
import { usageLedger } from '../billing/ledger.ts';
import { logger } from './observability/logger.ts';

export type Services = {
  config: Config;
  databaseUrl: string;
  orm: Orm;
  secrets: SecretBox;
  tokens: TokenService;
  /** Cross-process events (LISTEN/NOTIFY on the same database). */
  pubsub: PgPubSub;
  /** The usage ledger billing reports read (see billing/ledger.ts). */
  usage: UsageRecorder;
  /** Set when the process begins to stop: /readyz answers 503 so load balancers drain it. */
  shuttingDown: boolean;
  close(): Promise<void>;
};

export function buildServices(config: Config, databaseUrl: string, orm: Orm, onClose: () => Promise<void>): Services {
  const secrets = new SecretBox(loadMasterKey(config));
  const tokens = new TokenService(() => systemFork(orm), secrets, {
    issuer: config.tokenIssuer,
    audience: config.tokenAudience,
    ttlSeconds: config.tokenTtlSeconds,
  });
  const pubsub = new PgPubSub(databaseUrl, {
    onError: (e) => logger.error({ component: 'pubsub', error: e.message }, 'pub/sub error'),
  });
  const close = async () => {
    await pubsub.close();
    await onClose();
  };
  return { config, databaseUrl, orm, secrets, tokens, pubsub, usage: usageLedger, shuttingDown: false, close };
}

/** Services on the configured database (embedded PostgreSQL when DATABASE_URL is unset). */
export async function startServices(config: Config): Promise<Services> {
  const db: Database = await openDatabase(config);
  return buildServices(config, db.url, db.orm, () => db.close());
}

/** Services on a given database URL (tests, tools). */
export async function startServicesOn(config: Config, databaseUrl: string): Promise<Services> {
  const orm = await openOrm(databaseUrl);
  return buildServices(config, databaseUrl, orm, () => orm.close());
}
