// MikroORM configuration and start-up: connect, apply migrations, expose the ORM.
import { MikroORM, type Options } from '@mikro-orm/postgresql';
import { Migrator } from '@mikro-orm/migrations';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { installQueue } from '../engine/queue.ts';
import { entities } from './entities/index.ts';
import { tenantFilter } from './tenant-filter.ts';

const migrationsPath = fileURLToPath(new URL('../../migrations', import.meta.url));

export function ormOptions(clientUrl: string, extra: Partial<Options> = {}): Options {
  return {
    clientUrl,
    entities,
    discovery: { requireEntitiesArray: true },
    extensions: [Migrator],
    filters: { tenant: tenantFilter },
    forceUtcTimezone: true,
    allowGlobalContext: false,
    migrations: {
      path: migrationsPath,
      pathTs: migrationsPath,
      glob: '!(*.d).{js,ts}',
      transactional: true,
      allOrNothing: true,
      emit: 'ts',
      snapshot: false,
      silent: true,
    },
    // The job queue's tables belong to graphile-worker, which migrates them itself.
    schemaGenerator: { ignoreSchema: ['graphile_worker'] },
    pool: { min: 0, max: 10 },
    debug: false,
    ...extra,
  };
}

export type Orm = MikroORM;

/** Connect and bring the schema (ours and the job queue's) up to date. */
export async function openOrm(clientUrl: string, extra: Partial<Options> = {}): Promise<Orm> {
  const orm = await MikroORM.init(ormOptions(clientUrl, extra));
  await orm.getMigrator().up();
  const pool = new pg.Pool({ connectionString: clientUrl, max: 1 });
  // A dropped connection of this short-lived pool is harmless; the next open retries.
  pool.on('error', () => {});
  pool.on('connect', (client) => client.on('error', () => {}));
  try {
    await installQueue(pool);
  } finally {
    await pool.end();
  }
  return orm;
}

/** A fork that sees every project: for system jobs (scheduler, workers, sync), never requests. */
export function systemFork(orm: Orm) {
  const em = orm.em.fork();
  em.setFilterParams('tenant', { projectIds: null });
  return em;
}
