// Rate limits per service account: a tiny bucket (capacity 3, one token a second) refuses the
// operation past it with RATE_LIMITED and a retry-after hint — HTTP 429 + Retry-After over
// HTTP, an error over graphql-ws — and serves again once that time has passed. The token
// endpoint (per address) and the CSV exports (per account) count against the same buckets.
import { createClient, type Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { loadConfig } from '../../src/config.ts';
import { listen, type RunningServer } from '../../src/server.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { seeder } from '../helpers/seed.ts';
import { createServiceAccount } from '../../src/auth/service-accounts.ts';
import { systemFork } from '../../src/db/orm.ts';
import { registerTestSecrets } from '../helpers/secret-registry.ts';

const CAPACITY = 3;
const sleep = (seconds: number) => new Promise((r) => setTimeout(r, seconds * 1000));

describe('rate limits', () => {
  let t: TestApp;
  let server: RunningServer;
  let projectId: string;
  const clients: Client[] = [];
  const tenant = () => t.login('TENANT', [projectId]);

  beforeAll(async () => {
    t = await startTestApp({ STRONGBOX_RATE_LIMIT_TENANT: `${CAPACITY}:1` });
    server = await listen(t.services, '127.0.0.1', 0);
    const s = seeder(t.services.orm);
    projectId = (await s.project(await s.cloud())).id;
  });
  afterAll(async () => {
    for (const c of clients) await c.dispose();
    await server?.close();
    await t?.close();
  });

  const viewerQuery = async (token: string) => {
    const res = await t.fetch('/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: '{ viewer { role } }' }),
    });
    return { status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.json() };
  };

  it('refuses the HTTP request past the bucket with 429 and Retry-After, and recovers after that time', async () => {
    const token = await tenant();
    const other = await tenant();
    for (let i = 0; i < CAPACITY; i++) expect((await viewerQuery(token)).body.data.viewer.role).toBe('TENANT');

    const refused = await viewerQuery(token);
    expect(refused.status).toBe(429);
    expect(refused.body.data ?? null).toBeNull();
    expect(refused.body.errors[0].extensions.code).toBe('RATE_LIMITED');
    const wait = refused.body.errors[0].extensions.retryAfterSeconds;
    expect(wait).toBeGreaterThanOrEqual(1);
    expect(refused.retryAfter).toBe(String(wait));
    expect(refused.body.errors[0].extensions.http).toBeUndefined();

    // Buckets are per account: another tenant is served meanwhile.
    expect((await viewerQuery(other)).status).toBe(200);
    // ADMIN has its own (default, generous) limit.
    expect((await viewerQuery(await t.login('ADMIN'))).status).toBe(200);

    await sleep(wait);
    const again = await viewerQuery(token);
    expect(again.status).toBe(200);
    expect(again.body.data.viewer.role).toBe('TENANT');
  });

  it('refuses the graphql-ws operation past the bucket with RATE_LIMITED, and recovers after that time', async () => {
    const token = await tenant();
    const client = createClient({ url: server.url.replace('http', 'ws'), webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${token}` }, retryAttempts: 0 });
    clients.push(client);
    const run = () =>
      new Promise<{ result?: any; error?: any }>((resolve) => {
        let result: any;
        client.subscribe({ query: '{ viewer { role } }' }, { next: (r) => (result = r), error: (error) => resolve({ error }), complete: () => resolve({ result }) });
      });

    for (let i = 0; i < CAPACITY; i++) expect((await run()).result.data.viewer.role).toBe('TENANT');
    const refused = await run();
    const errors = refused.error as { message: string; extensions: Record<string, unknown> }[];
    expect(errors[0]!.extensions.code).toBe('RATE_LIMITED');
    const wait = errors[0]!.extensions.retryAfterSeconds as number;
    expect(wait).toBeGreaterThanOrEqual(1);
    expect(errors[0]!.extensions.http).toBeUndefined();

    await sleep(wait);
    expect((await run()).result.data.viewer.role).toBe('TENANT');
  });

  it('refuses a malformed limit with a clear configuration error', () => {
    expect(() => loadConfig({ STRONGBOX_RATE_LIMIT_TENANT: 'lots' })).toThrow(/STRONGBOX_RATE_LIMIT_TENANT: must be CAPACITY:REFILL_PER_SECOND/);
    expect(() => loadConfig({ STRONGBOX_RATE_LIMIT_ADMIN: '10:0' })).toThrow(/STRONGBOX_RATE_LIMIT_ADMIN/);
    expect(loadConfig({ STRONGBOX_RATE_LIMIT_BILLING: '50:2.5' }).rateLimits.BILLING).toEqual({ capacity: 50, refillPerSecond: 2.5 });
  });
});

describe('rate limits outside GraphQL', () => {
  let t: TestApp;
  let server: RunningServer;
  let creds: { clientId: string; clientSecret: string };

  beforeAll(async () => {
    t = await startTestApp({ STRONGBOX_RATE_LIMIT_ANONYMOUS: `${CAPACITY}:1`, STRONGBOX_RATE_LIMIT_BILLING: `${CAPACITY}:1` });
    server = await listen(t.services, '127.0.0.1', 0);
    creds = await createServiceAccount(systemFork(t.services.orm), { name: 'token-limited', role: 'ADMIN' });
    registerTestSecrets(creds.clientSecret);
  });
  afterAll(async () => {
    await server?.close();
    await t?.close();
  });

  const tokenRequest = (secret: string) =>
    fetch(new URL('/oauth/token', server.url), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: creds.clientId, client_secret: secret }),
    });

  it('counts every token request against its address: guessing stops at the bucket, the right secret waits too', async () => {
    for (let i = 0; i < CAPACITY; i++) expect((await tokenRequest(`guess-${i}`)).status).toBe(401);
    const refused = await tokenRequest(creds.clientSecret);
    expect(refused.status).toBe(429);
    const wait = Number(refused.headers.get('retry-after'));
    expect(wait).toBeGreaterThanOrEqual(1);
    const body = await refused.json();
    expect(body).toMatchObject({ error: 'rate_limited', retry_after: wait });
    expect(body.access_token).toBeUndefined();

    await sleep(wait);
    const again = await tokenRequest(creds.clientSecret);
    expect(again.status).toBe(200);
    registerTestSecrets((await again.json()).access_token);
  });

  it('counts CSV exports against the account, like GraphQL operations', async () => {
    const billing = await t.login('BILLING');
    const csv = () => fetch(new URL('/reports/usage.csv?from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z', server.url), { headers: { authorization: `Bearer ${billing}` } });
    for (let i = 0; i < CAPACITY; i++) {
      const ok = await csv();
      expect(ok.status).toBe(200);
      await ok.text();
    }
    const refused = await csv();
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(refused.headers.get('content-type')).not.toContain('csv');
    expect((await refused.json()).error).toBe('rate_limited');
  });
});
