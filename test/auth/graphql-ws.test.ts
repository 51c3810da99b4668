// graphql-ws over a real port: the socket is authenticated in connection_init; without a valid
// token it is closed with 4403 Forbidden; revocation and token expiry close it too.
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServiceAccount, setEnabled } from '../../src/auth/service-accounts.ts';
import { ServiceAccount } from '../../src/db/entities/index.ts';
import { systemFork } from '../../src/db/orm.ts';
import { listen, type RunningServer } from '../../src/server.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { mint, serviceSigningKey } from '../helpers/tokens.ts';

type Outcome = { connected: boolean; closed?: { code: number; reason: string } };

describe('graphql-ws authentication', () => {
  let t: TestApp;
  let server: RunningServer;
  let wsUrl: string;
  const clients: Client[] = [];

  beforeAll(async () => {
    t = await startTestApp();
    server = await listen(t.services, '127.0.0.1', 0);
    wsUrl = server.url.replace(/^http/, 'ws');
  });
  afterAll(async () => {
    for (const c of clients) await c.dispose();
    await server?.close();
    await t?.close();
  });

  function connect(connectionParams?: Record<string, unknown>) {
    const outcome: Outcome = { connected: false };
    let settle!: () => void;
    const settled = new Promise<void>((r) => (settle = r));
    const closed = new Promise<{ code: number; reason: string }>((resolve) => {
      const client = createClient({
        url: wsUrl,
        webSocketImpl: WebSocket,
        connectionParams,
        lazy: false,
        retryAttempts: 0,
        onNonLazyError: () => {},
        on: {
          connected: () => {
            outcome.connected = true;
            settle();
          },
          closed: (event) => {
            const e = event as { code: number; reason: string };
            outcome.closed = { code: e.code, reason: e.reason };
            settle();
            resolve(outcome.closed);
          },
        },
      });
      clients.push(client);
      (outcome as Outcome & { client: Client }).client = client;
    });
    return { outcome: outcome as Outcome & { client: Client }, settled, closed };
  }

  function query(client: Client, q: string): Promise<{ data?: any; errors?: any[] }> {
    return new Promise((resolve, reject) => {
      let result: any;
      client.subscribe({ query: q }, {
        next: (v) => (result = v),
        error: (e) => resolve({ errors: Array.isArray(e) ? e : [e] }),
        complete: () => resolve(result),
      });
      setTimeout(() => reject(new Error('no answer')), 10_000).unref();
    });
  }

  it('closes a connection without a token with 4403 Forbidden', async () => {
    const c = connect();
    expect(await c.closed).toMatchObject({ code: 4403 });
    expect(c.outcome.connected).toBe(false);
  });

  it('closes connections with garbage, a non-bearer or a forged token', async () => {
    const key = await serviceSigningKey(t.services);
    const { generateKeyPair } = await import('jose');
    const other = await generateKeyPair('ES256');
    const forged = await mint({ key: other.privateKey, header: { alg: 'ES256', kid: key.kid }, sub: '01900000-0000-7000-8000-000000000000', issuer: 'strongbox', audience: 'strongbox-api' });
    for (const authorization of ['garbage', 'Bearer garbage', 'Basic Zm9vOmJhcg==', `Bearer ${forged}`, 42]) {
      const c = connect({ authorization });
      expect(await c.closed).toMatchObject({ code: 4403 });
      expect(c.outcome.connected).toBe(false);
    }
  });

  it('acknowledges a valid token and answers operations with the caller as viewer', async () => {
    const token = await t.login('OPERATOR');
    const c = connect({ authorization: `Bearer ${token}` });
    await c.settled;
    expect(c.outcome.connected).toBe(true);
    const res = await query(c.outcome.client, '{ viewer { role } }');
    expect(res.data.viewer.role).toBe('OPERATOR');
  });

  it('runs the same validation as HTTP over the socket', async () => {
    const token = await t.login('OPERATOR');
    const c = connect({ authorization: `Bearer ${token}` });
    await c.settled;
    const res = await query(c.outcome.client, '{ viewer { noSuchField } }');
    expect(res.errors?.[0]?.message).toMatch(/noSuchField/);
  });

  it('refuses the next operation and closes the socket once the account is disabled', async () => {
    const em = systemFork(t.services.orm);
    const created = await createServiceAccount(em, { name: 'ws-disabled', role: 'ADMIN' });
    const res = await t.fetch('/oauth/token', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ grant_type: 'client_credentials', client_id: created.clientId, client_secret: created.clientSecret }) });
    const token = (await res.json()).access_token;
    const c = connect({ authorization: `Bearer ${token}` });
    await c.settled;
    expect((await query(c.outcome.client, '{ viewer { name } }')).data.viewer.name).toBe('ws-disabled');
    const em2 = systemFork(t.services.orm);
    await setEnabled(em2, await em2.findOneOrFail(ServiceAccount, { id: created.account.id }), false);
    const refused = await query(c.outcome.client, '{ viewer { name } }');
    expect(refused.data).toBeUndefined();
    expect(await c.closed).toMatchObject({ code: 4403 });
  });

  it('closes the socket when the token expires', async () => {
    const key = await serviceSigningKey(t.services);
    const created = await createServiceAccount(systemFork(t.services.orm), { name: 'ws-expiring', role: 'BILLING' });
    const now = Math.floor(Date.now() / 1000);
    const token = await mint({ key: key.privateKey, header: { alg: 'ES256', kid: key.kid }, sub: created.account.id, issuer: t.services.config.tokenIssuer, audience: t.services.config.tokenAudience, iat: now, exp: now + 2 });
    const c = connect({ authorization: `Bearer ${token}` });
    await c.settled;
    expect(c.outcome.connected).toBe(true);
    const started = Date.now();
    expect(await c.closed).toMatchObject({ code: 4403, reason: expect.stringMatching(/expired/) });
    expect(Date.now() - started).toBeLessThan(5000);
  });
});
