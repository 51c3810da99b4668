// /healthz and /readyz for load balancers, on a PostgreSQL of this test's own (the shared test
// database must not be stopped): ready with every check ok, 503 naming `shutdown` while the
// process stops, 503 naming `database` once the database is gone.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../../src/db/embedded-postgres.ts';
import { listenHealth } from '../../src/http/health.ts';
import { createApp, type App } from '../../src/server.ts';
import { startServicesOn, type Services } from '../../src/services.ts';

let dir: string;
let pg: EmbeddedDatabase;
let services: Services;
let app: App;
let pgStopped = false;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'sb-readyz-'));
  pg = await startEmbeddedPostgres(dir, { ephemeral: true });
  const config = loadConfig({ STRONGBOX_DATA_DIR: dir, STRONGBOX_MASTER_KEY: randomBytes(32).toString('base64') });
  services = await startServicesOn(config, pg.url);
  app = createApp(services);
});

afterAll(async () => {
  await services?.close().catch(() => {});
  if (!pgStopped) await pg?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const get = async (pathname: string) => {
  const res = await app.fetch(new URL(pathname, 'http://strongbox.test'));
  return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
};

describe('health endpoints', () => {
  it('/healthz answers while the process is up', async () => {
    expect(await get('/healthz')).toMatchObject({ status: 200, text: 'ok' });
  });

  it('/readyz is 200 with every check named and ok', async () => {
    const res = await get('/readyz');
    expect(res.status).toBe(200);
    expect(res.type).toMatch(/application\/json/);
    expect(JSON.parse(res.text)).toEqual({ ready: true, checks: { database: 'ok', migrations: 'ok', queue: 'ok', shutdown: 'ok' } });
  });

  it("a worker's own listener answers the same routes", async () => {
    const listener = await listenHealth(services, '127.0.0.1', 0);
    try {
      const ready = await fetch(`${listener.url}/readyz`);
      expect(ready.status).toBe(200);
      expect((await ready.json()).checks.database).toBe('ok');
      expect(await (await fetch(`${listener.url}/healthz`)).text()).toBe('ok');
      const metrics = await fetch(`${listener.url}/metrics`);
      expect(metrics.status).toBe(200);
      expect(await metrics.text()).toMatch(/^strongbox_data_movers_alive\{node_configuration=""\} 0$/m);
      expect((await fetch(`${listener.url}/graphql`)).status).toBe(404);
    } finally {
      await listener.close();
    }
  });

  it('/readyz is 503 naming the shutdown while the process stops', async () => {
    services.shuttingDown = true;
    try {
      const res = await get('/readyz');
      expect(res.status).toBe(503);
      expect(JSON.parse(res.text)).toEqual({ ready: false, checks: { database: 'ok', migrations: 'ok', queue: 'ok', shutdown: 'failing' } });
    } finally {
      services.shuttingDown = false;
    }
  });

  it('/readyz turns 503 naming the database once the database stops; /healthz stays 200', async () => {
    await pg.stop();
    pgStopped = true;
    const res = await get('/readyz');
    expect(res.status).toBe(503);
    const body = JSON.parse(res.text);
    expect(body.ready).toBe(false);
    expect(body.checks.database).toMatch(/^(failing|timeout)$/);
    expect(body.checks).toMatchObject({ migrations: 'skipped', queue: 'skipped', shutdown: 'ok' });
    expect((await get('/healthz')).status).toBe(200);
  });
});
