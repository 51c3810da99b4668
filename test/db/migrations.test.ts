// The migrations in migrations/ build exactly the schema the entities describe: a change to an
// entity without its migration fails here.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { openOrm, type Orm } from '../../src/db/orm.ts';
import { createTestDatabase } from '../helpers/database.ts';

let orm: Orm;
let drop: () => Promise<void>;
beforeAll(async () => {
  const db = await createTestDatabase();
  drop = db.drop;
  orm = await openOrm(db.url);
});
afterAll(async () => {
  await orm?.close();
  await drop?.();
});

it('leaves nothing for a new migration to do', async () => {
  const diff = await orm.getSchemaGenerator().getUpdateSchemaSQL({ wrap: false, safe: false });
  expect(diff.trim()).toBe('');
});
