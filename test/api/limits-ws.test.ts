// The same limits hold over graphql-ws: the cost and armor rules run in its `validate`, and the
// cost of an executed operation is reported in extensions.cost there too.
import { createClient, type Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { listen, type RunningServer } from '../../src/server.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';

describe('limits over graphql-ws', () => {
  let t: TestApp;
  let server: RunningServer;
  let client: Client;

  beforeAll(async () => {
    t = await startTestApp();
    server = await listen(t.services, '127.0.0.1', 0);
    const token = await t.login('ADMIN');
    client = createClient({ url: server.url.replace('http', 'ws'), webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${token}` }, retryAttempts: 0 });
  });
  afterAll(async () => {
    await client?.dispose();
    await server?.close();
    await t?.close();
  });

  function run(query: string, variables: Record<string, unknown> = {}) {
    return new Promise<{ result?: any; error?: any }>((resolve) => {
      let result: any;
      client.subscribe({ query, variables }, { next: (r) => (result = r), error: (error) => resolve({ error }), complete: () => resolve({ result }) });
    });
  }

  it('answers a small query with its cost', async () => {
    const { result, error } = await run('{ viewer { role } }');
    expect(error).toBeUndefined();
    expect(result.data.viewer.role).toBe('ADMIN');
    expect(result.extensions?.cost).toBe(2);
  });

  it('refuses too costly, too deep and alias-heavy operations', async () => {
    const costly = await run('query($n: Int) { instances(first: $n) { edges { node { volumes { instance { volumes { instance { volumes { id } } } } } } } } }', { n: 100 });
    expect(JSON.stringify(costly.error)).toMatch(/exceeds the limit/);
    const aliases = await run(`{ ${Array.from({ length: 20 }, (_, i) => `a${i}: viewer { name }`).join(' ')} }`);
    expect(JSON.stringify(aliases.error)).toMatch(/aliases/i);
  });
});
