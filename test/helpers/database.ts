// A fresh, empty database per test file on the run's PostgreSQL (see global-setup.ts).
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { openOrm, type Orm } from '../../src/db/orm.ts';

export function withDatabaseName(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

/** Creates a new database and returns its URL; `drop()` removes it. */
export async function createTestDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const admin = inject('adminDatabaseUrl');
  const name = `sb_test_${randomBytes(6).toString('hex')}`;
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  await client.query(`CREATE DATABASE ${name}`);
  await client.end();
  return {
    url: withDatabaseName(admin, name),
    async drop() {
      const c = new pg.Client({ connectionString: admin });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/** A fresh database with an open ORM (migrated); `close()` closes it and drops the database. */
export async function openTestOrm(): Promise<{ orm: Orm; url: string; close(): Promise<void> }> {
  const db = await createTestDatabase();
  const orm = await openOrm(db.url);
  return {
    orm,
    url: db.url,
    async close() {
      await orm.close();
      await db.drop();
    },
  };
}
