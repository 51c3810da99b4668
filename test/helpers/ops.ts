// Typed operations from schema/operations (via codegen) and raw database checks.
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print } from 'graphql';
import pg from 'pg';
import type { GqlResult, TestApp } from './app.ts';

/** Runs a generated typed document as `token`. */
export function op<R, V>(t: TestApp, token: string | null, doc: TypedDocumentNode<R, V>, variables: V): Promise<GqlResult<R>> {
  return t.gql<R>(token, print(doc), variables as Record<string, unknown>);
}

/** Runs SQL on the test database with its own connection. */
export async function sql<T = any>(t: TestApp, text: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: t.databaseUrl });
  await client.connect();
  try {
    return (await client.query(text, params)).rows as T[];
  } finally {
    await client.end();
  }
}

/** Row count of every table in the public schema (to prove a refused request changed nothing). */
export async function rowCounts(t: TestApp): Promise<Record<string, number>> {
  const client = new pg.Client({ connectionString: t.databaseUrl });
  await client.connect();
  try {
    // audit_event is the append-only record of every attempt, refused ones included: not data a request changes.
    const tables = (await client.query("select tablename from pg_tables where schemaname = 'public' and tablename <> 'audit_event' order by tablename")).rows.map((r) => r.tablename as string);
    const counts: Record<string, number> = {};
    for (const name of tables) counts[name] = Number((await client.query(`select count(*) as n from "${name}"`)).rows[0].n);
    return counts;
  } finally {
    await client.end();
  }
}

/** A digest of every row of every table, to prove that nothing was updated either. */
export async function snapshot(t: TestApp): Promise<Record<string, string>> {
  const client = new pg.Client({ connectionString: t.databaseUrl });
  await client.connect();
  try {
    // audit_event is the append-only record of every attempt, refused ones included: not data a request changes.
    const tables = (await client.query("select tablename from pg_tables where schemaname = 'public' and tablename <> 'audit_event' order by tablename")).rows.map((r) => r.tablename as string);
    const out: Record<string, string> = {};
    for (const name of tables) {
      out[name] = (await client.query(`select coalesce(md5(string_agg(x::text, '|' order by x::text)), '') as h, count(*) as n from "${name}" x`)).rows.map((r) => `${r.n}:${r.h}`)[0]!;
    }
    return out;
  } finally {
    await client.end();
  }
}
