// A real Strongbox API on a fresh test database, called through yoga's fetch (no port):
// `const t = await startTestApp(); const admin = await t.login('ADMIN'); await t.gql(admin, q)`.
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config.ts';
import { createServiceAccount } from '../../src/auth/service-accounts.ts';
import type { Role } from '../../src/db/entities/index.ts';
import { systemFork } from '../../src/db/orm.ts';
import { createApp, type App } from '../../src/server.ts';
import { startServicesOn, type Services } from '../../src/services.ts';
import { createTestDatabase } from './database.ts';
import { registerTestSecrets } from './secret-registry.ts';

export type GqlResult<T = any> = { data?: T; errors?: { message: string; extensions?: Record<string, unknown>; path?: unknown[] }[]; extensions?: Record<string, unknown> };

export type TestApp = {
  services: Services;
  app: App;
  databaseUrl: string;
  /** Every response body the app sent in this test file (to search for leaked secrets). */
  responses: string[];
  fetch(pathname: string, init?: RequestInit): Promise<Response>;
  /** A new service account of `role` and a token for it. */
  login(role: Role, projectIds?: string[]): Promise<string>;
  gql<T = any>(token: string | null, query: string, variables?: Record<string, unknown>): Promise<GqlResult<T>>;
  close(): Promise<void>;
};

export async function startTestApp(env: Record<string, string> = {}): Promise<TestApp> {
  const db = await createTestDatabase();
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'strongbox-test-data-'));
  const masterKey = randomBytes(32).toString('base64');
  registerTestSecrets(masterKey);
  const config = loadConfig({ STRONGBOX_DATA_DIR: dataDir, STRONGBOX_MASTER_KEY: masterKey, ...env });
  const services = await startServicesOn(config, db.url);
  const app = createApp(services);
  const responses: string[] = [];
  let accounts = 0;

  const fetch = async (pathname: string, init?: RequestInit) => {
    const res = await app.fetch(new URL(pathname, "http://strongbox.test"), init ?? {});
    const body = await res.text();
    responses.push(body);
    return new Response(body, { status: res.status, headers: res.headers });
  };

  const t: TestApp = {
    services,
    app,
    databaseUrl: db.url,
    responses,
    fetch,
    async login(role, projectIds) {
      const em = systemFork(services.orm);
      const creds = await createServiceAccount(em, { name: `${role.toLowerCase()}-${++accounts}-${randomBytes(3).toString('hex')}`, role, projectIds });
      registerTestSecrets(creds.clientSecret);
      const res = await fetch('/oauth/token', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'client_credentials', client_id: creds.clientId, client_secret: creds.clientSecret }),
      });
      if (res.status !== 200) throw new Error(`token request failed: ${res.status} ${await res.text()}`);
      const token = (await res.json()).access_token;
      registerTestSecrets(token);
      return token;
    },
    async gql(token, query, variables) {
      const res = await fetch('/graphql', {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: JSON.stringify({ query, variables }),
      });
      return res.json();
    },
    async close() {
      await services.close();
      await db.drop();
    },
  };
  return t;
}
