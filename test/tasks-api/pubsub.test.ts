// The LISTEN/NOTIFY pub/sub on its own: delivery between two instances (as two processes would
// have), transactional publish, payload limit, bounded buffers and reconnection.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgPubSub, PubSubError, notify } from '../../src/events/pubsub.ts';
import { createTestDatabase } from '../helpers/database.ts';

async function nextWithin<T>(it: AsyncIterator<T>, ms = 5000): Promise<T> {
  const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no event within ${ms} ms`)), ms));
  const r = await Promise.race([it.next(), timeout]);
  if (r.done) throw new Error('iterator ended');
  return r.value;
}

describe('PgPubSub', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let a: PgPubSub;
  let b: PgPubSub;
  beforeAll(async () => {
    db = await createTestDatabase();
    a = new PgPubSub(db.url);
    b = new PgPubSub(db.url, { minBackoffMs: 20, maxBackoffMs: 200 });
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await db?.drop();
  });

  it('delivers an event published by one instance to subscribers of another, filtered', async () => {
    const all = await b.subscribe<{ n: number }>('sb_test');
    const odd = await b.subscribe<{ n: number }>('sb_test', { filter: (e) => e.n % 2 === 1 });
    await a.publish('sb_test', { n: 2 });
    await a.publish('sb_test', { n: 3 });
    expect(await nextWithin(all)).toEqual({ n: 2 });
    expect(await nextWithin(all)).toEqual({ n: 3 });
    expect(await nextWithin(odd)).toEqual({ n: 3 });
    await all.return!();
    await odd.return!();
    expect(b.subscriberCount('sb_test')).toBe(0);
  });

  it('sends an event published inside a transaction only on commit', async () => {
    const events = await b.subscribe<{ tx: string }>('sb_test_tx');
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    // notify() speaks MikroORM's `?` placeholders; pg wants $n.
    const executor = { execute: (sql: string, params: unknown[]) => client.query(sql.replace('?, ?', '$1, $2'), params) };
    try {
      await client.query('begin');
      await notify(executor, 'sb_test_tx', { tx: 'rolled back' });
      await client.query('rollback');
      await client.query('begin');
      await notify(executor, 'sb_test_tx', { tx: 'committed' });
      await client.query('commit');
    } finally {
      await client.end();
    }
    expect(await nextWithin(events)).toEqual({ tx: 'committed' });
    await a.publish('sb_test_tx', { tx: 'after' });
    expect(await nextWithin(events)).toEqual({ tx: 'after' });
    await events.return!();
  });

  it('refuses payloads over the NOTIFY limit and bad channel names', async () => {
    await expect(a.publish('sb_test', { blob: 'x'.repeat(8000) })).rejects.toBeInstanceOf(PubSubError);
    await expect(a.publish('bad; drop table x', {})).rejects.toBeInstanceOf(PubSubError);
  });

  it('keeps only the newest events for a slow subscriber (bounded buffer)', async () => {
    const slow = await b.subscribe<{ n: number }>('sb_test_slow', { bufferSize: 3 });
    const probe = await b.subscribe<{ n: number }>('sb_test_slow');
    for (let n = 1; n <= 10; n++) await a.publish('sb_test_slow', { n });
    // Wait until all ten arrived in this process.
    for (let n = 1; n <= 10; n++) await nextWithin(probe);
    expect(await nextWithin(slow)).toEqual({ n: 8 });
    expect(await nextWithin(slow)).toEqual({ n: 9 });
    expect(await nextWithin(slow)).toEqual({ n: 10 });
    await slow.return!();
    await probe.return!();
  });

  it('reconnects and LISTENs again after its connection is cut', async () => {
    const events = await b.subscribe<{ n: number }>('sb_test_reconnect');
    const before = b.connections;
    const pid = await b.listenerPid();
    expect(pid).toBeTypeOf('number');
    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    await admin.query('select pg_terminate_backend($1)', [pid]);
    await admin.end();
    // Publish until the reconnected listener hears one (events in the gap are lost by design).
    const deadline = Date.now() + 10_000;
    let got: { n: number } | null = null;
    for (let n = 1; !got && Date.now() < deadline; n++) {
      await a.publish('sb_test_reconnect', { n });
      got = await nextWithin(events, 200).catch(() => null);
    }
    expect(got).not.toBeNull();
    expect(b.connections).toBeGreaterThan(before);
    await events.return!();
  });

  it('ends open iterators on close', async () => {
    const c = new PgPubSub(db.url);
    const events = await c.subscribe('sb_test_close');
    const pending = events.next();
    await c.close();
    expect(await pending).toEqual({ value: undefined, done: true });
    await expect(c.publish('sb_test_close', {})).rejects.toBeInstanceOf(PubSubError);
  });
});
