// SIGTERM to a real `strongbox serve` process with open subscriptions: graphql-ws sockets are
// closed with 1001 Going Away (clients reconnect, to another instance), SSE streams end, and
// the process exits 0 (the bounded hard exit would be 1).
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createClient } from 'graphql-ws';
import { afterAll, beforeAll, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { startStrongbox, type StrongboxProcess } from '../helpers/strongbox-process.ts';

let t: TestApp;
let serve: StrongboxProcess;

beforeAll(async () => {
  const masterKey = randomBytes(32).toString('base64');
  t = await startTestApp({ STRONGBOX_MASTER_KEY: masterKey });
  serve = startStrongbox(['serve', '--api-only'], {
    DATABASE_URL: t.databaseUrl,
    STRONGBOX_MASTER_KEY: masterKey,
    STRONGBOX_DATA_DIR: mkdtempSync(path.join(os.tmpdir(), 'sb-serve-shutdown-')),
    STRONGBOX_HOST: '127.0.0.1',
    STRONGBOX_PORT: '0',
    STRONGBOX_SHUTDOWN_GRACE_SECONDS: '5',
  });
});
afterAll(async () => {
  if (serve?.child.exitCode === null) serve.child.kill('SIGKILL');
  await t?.close();
});

it('on SIGTERM, serve closes graphql-ws subscriptions with 1001, ends SSE streams and exits 0', async () => {
  const url = (await serve.waitForOutput(/at (http:\/\/\S+\/graphql)/))[1]!;
  const token = await t.login('OPERATOR');

  // A graphql-ws subscription, acknowledged by the server.
  let closeCode: number | undefined;
  const client = createClient({
    url: url.replace('http', 'ws'),
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${token}` },
    retryAttempts: 0,
    lazy: false,
    onNonLazyError: () => {}, // the 1001 close, asserted below
    on: { closed: (event) => (closeCode = (event as { code: number }).code) },
  });
  const wsEnded = new Promise<unknown>((resolve) => {
    client.subscribe({ query: 'subscription { taskUpdates { id } }' }, { next: () => {}, error: resolve, complete: () => resolve('complete') });
  });
  await new Promise<void>((resolve) => client.on('connected', () => resolve()));

  // An SSE subscription, its stream open.
  const sse = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query: 'subscription { taskUpdates { id } }' }),
  });
  expect(sse.status).toBe(200);
  const sseEnded = sse.text();

  serve.child.kill('SIGTERM');
  expect(await serve.exited).toEqual({ code: 0, signal: null });
  await wsEnded;
  expect(closeCode).toBe(1001);
  await sseEnded; // resolves: the stream ended (a dropped connection would reject)
  expect(serve.stdout()).toMatch(/SIGTERM: shutting down/);
  expect(serve.stdout()).toMatch(/shutdown complete/);
  await client.dispose();
});
