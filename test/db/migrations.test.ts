// The migrations in migrations/ build exactly the schema the entities describe: a change to an
// entity without its migration fails here.
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Orm } from '../../src/db/orm.ts';
import { openTestOrm } from '../helpers/database.ts';

let orm: Orm;
let closeDb: (() => Promise<void>) | undefined;
beforeAll(async () => {
  ({ orm, close: closeDb } = await openTestOrm());
});
afterAll(async () => {
  await closeDb?.();
});

it('leaves nothing for a new migration to do', async () => {
  const diff = await orm.getSchemaGenerator().getUpdateSchemaSQL({ wrap: false, safe: false });
  expect(diff.trim()).toBe('');
});
