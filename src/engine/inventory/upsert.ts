// Bulk upserts for inventory sync: one statement per batch, rows passed as one JSON parameter
// (`jsonb_to_recordset`), and rows updated only when a value really changed — so a second sync
// of an unchanged cloud writes nothing (updated_at stays).
import type { EntityManager } from '@mikro-orm/postgresql';
import { v7 as uuidv7 } from 'uuid';

export type Column = { name: string; type: 'text' | 'uuid' | 'int' | 'bigint' | 'boolean' | 'jsonb' };

const BATCH = 2000;

/** Runs SQL with real bind parameters through knex (em.execute inlines parameters into the SQL
 *  text, which is slow for large JSON and lets a `?` in the data look like a placeholder). */
async function run<T>(em: EntityManager, sql: string, params: unknown[]): Promise<T[]> {
  const query = em.getKnex().raw(sql, params as never[]);
  const trx = em.getTransactionContext();
  if (trx) query.transacting(trx);
  return ((await query) as { rows: T[] }).rows;
}
const q = (name: string) => `"${name}"`;

/**
 * Inserts or updates rows of `table` keyed by `conflict` (plus `cloud_id`). Columns not listed
 * (operator settings such as SSH or node configuration) are never touched. Returns how many
 * rows were inserted or changed.
 */
export async function upsertRows(em: EntityManager, table: string, cloudId: string, conflict: string[], columns: Column[], rows: Record<string, unknown>[]): Promise<number> {
  let changed = 0;
  const all: Column[] = [{ name: 'id', type: 'uuid' }, { name: 'cloud_id', type: 'uuid' }, ...columns];
  const keys = new Set(['cloud_id', ...conflict]);
  const updatable = columns.filter((c) => !keys.has(c.name));
  const names = all.map((c) => q(c.name)).join(', ');
  const sql = `insert into ${q(table)} (${names}, "created_at", "updated_at")
    select ${all.map((c) => `x.${q(c.name)}`).join(', ')}, now(), now()
    from jsonb_to_recordset(?::jsonb) as x(${all.map((c) => `${q(c.name)} ${c.type}`).join(', ')})
    on conflict (${[...keys].map(q).join(', ')}) ${updatable.length === 0 ? 'do nothing' : `do update set
      ${updatable.map((c) => `${q(c.name)} = excluded.${q(c.name)}`).join(', ')}, "updated_at" = now()
    where (${updatable.map((c) => `${q(table)}.${q(c.name)}`).join(', ')}) is distinct from (${updatable.map((c) => `excluded.${q(c.name)}`).join(', ')})`}
    returning "id"`;
  for (let i = 0; i < rows.length; i += BATCH) {
    const batch = rows.slice(i, i + BATCH).map((r) => ({ id: uuidv7(), cloud_id: cloudId, ...r }));
    const res = await run<{ id: string }>(em, sql, [JSON.stringify(batch)]);
    changed += res.length;
  }
  return changed;
}

/** Marks rows of the cloud whose key is not in `seen` as gone (`present = false`); returns how many. */
export async function markGone(em: EntityManager, table: string, cloudId: string, keyColumn: string, seen: string[]): Promise<number> {
  const res = await run<{ id: string }>(em,
    `update ${q(table)} set "present" = false, "updated_at" = now()
     where "cloud_id" = ? and "present"
       and not exists (select 1 from jsonb_array_elements_text(?::jsonb) as seen(k) where seen.k = ${q(table)}.${q(keyColumn)})
     returning "id"`,
    [cloudId, JSON.stringify(seen)],
  );
  return res.length;
}

/** key column value → row id, for the cloud's rows of `table`. */
export async function idMap(em: EntityManager, table: string, cloudId: string, keyColumn = 'external_id'): Promise<Map<string, string>> {
  const rows = await run<{ id: string; k: string }>(em, `select "id", ${q(keyColumn)} as "k" from ${q(table)} where "cloud_id" = ?`, [cloudId]);
  return new Map(rows.map((r) => [r.k, r.id]));
}
