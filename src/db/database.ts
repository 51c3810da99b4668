// The service's database: DATABASE_URL when set, else an embedded PostgreSQL under the data
// folder. Migrations are applied on open.
import path from 'node:path';
import type { Config } from '../config.ts';
import { startEmbeddedPostgres } from './embedded-postgres.ts';
import { openOrm, type Orm } from './orm.ts';

export type Database = { url: string; orm: Orm; close(): Promise<void> };

export async function resolveDatabaseUrl(config: Config): Promise<{ url: string; stop(): Promise<void> }> {
  if (config.databaseUrl) return { url: config.databaseUrl, stop: async () => {} };
  const pg = await startEmbeddedPostgres(path.join(config.dataDir, 'postgres'), { port: 54329 });
  return pg;
}

export async function openDatabase(config: Config): Promise<Database> {
  const server = await resolveDatabaseUrl(config);
  const orm = await openOrm(server.url);
  return {
    url: server.url,
    orm,
    async close() {
      await orm.close();
      await server.stop();
    },
  };
}
