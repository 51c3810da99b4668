// `strongbox serve --demo` as a newcomer runs it: a real child process on a test database and a
// temporary data folder. It must register the simulator, sync it, hand out working admin
// credentials through a 0600 file, and a second start on the same data must add nothing.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../helpers/database.ts';

type Serve = { child: ChildProcess; output: () => string; base: string };

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let dataDir: string;
let port: number;
let running: Serve | undefined;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function startServe(): Promise<Serve> {
  if (running) await stopServe(running); // a failed earlier test may have left one up
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'serve', '--demo'], {
    cwd: path.resolve(import.meta.dirname, '../..'),
    env: { ...process.env, DATABASE_URL: db.url, STRONGBOX_DATA_DIR: dataDir, STRONGBOX_HOST: '127.0.0.1', STRONGBOX_PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const base = `http://127.0.0.1:${port}`;
  const serve = { child, output: () => out, base };
  running = serve;
  await until('/healthz', async () => {
    if (child.exitCode !== null) throw new Error(`serve --demo exited with ${child.exitCode}:\n${out}`);
    return (await fetch(`${base}/healthz`)).ok ? true : undefined;
  });
  await until('the banner', async () => (out.includes('What to do next') ? true : undefined), 10_000);
  return serve;
}

async function stopServe(s: Serve): Promise<void> {
  if (s.child.exitCode !== null) return;
  const exited = new Promise((resolve) => s.child.once('exit', resolve));
  s.child.kill('SIGTERM');
  const timer = setTimeout(() => s.child.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
  running = undefined;
}

const credentialsFile = () => path.join(dataDir, 'demo-credentials.json');

async function token(s: Serve): Promise<string> {
  // Exactly what the banner tells the newcomer: POST the credentials file as it is.
  const res = await fetch(`${s.base}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: readFileSync(credentialsFile()) });
  expect(res.status).toBe(200);
  return (await res.json()).access_token;
}

async function gql(s: Serve, tok: string, query: string, variables?: Record<string, unknown>): Promise<any> {
  const res = await fetch(`${s.base}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${tok}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = await res.json();
  expect(body.errors).toBeUndefined();
  return body.data;
}

const CATALOG = `{
  clouds(first: 10) { totalCount edges { node { name keystoneUrl authDomains { name } } } }
  backupDestinations(first: 10) { totalCount edges { node { name kind url isDefault } } }
  policies(first: 10) { totalCount edges { node { name } } }
  serviceAccounts(first: 10) { edges { node { name role } } }
}`;
const INSTANCES = `{ instances(first: 50) { totalCount edges { node { id externalId name present volumes { name externalId sizeBytes } } } } }`;
const SYNCS = `{ tasks(first: 20) { edges { node { type state error } } } }`;

async function syncsDone(s: Serve, tok: string, count: number) {
  return until(`${count} inventory sync(s) to finish`, async () => {
    const syncs = (await gql(s, tok, SYNCS)).tasks.edges.map((e: any) => e.node).filter((t: any) => t.type === 'INVENTORY_SYNC');
    return syncs.length === count && syncs.every((t: any) => ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(t.state)) ? syncs : undefined;
  });
}

const summary = (data: any) =>
  data.instances.edges
    .map((e: any) => ({ name: e.node.name, present: e.node.present, volumes: e.node.volumes.map((v: any) => v.name).sort() }))
    .sort((a: any, b: any) => a.name.localeCompare(b.name));

beforeAll(async () => {
  db = await createTestDatabase();
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'sb-demo-'));
  port = await freePort();
});

afterAll(async () => {
  if (running) await stopServe(running);
  await db?.drop();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('serve --demo', () => {
  let firstInstances: unknown;
  let firstClientId: string;

  it('registers the demo cloud, prints what to do next, and syncs the demo instances with their volumes', async () => {
    const s = await startServe();
    const out = s.output();
    expect(out).toContain(`credentials in ${credentialsFile()} (mode 0600)`);
    expect(out).toContain(`open ${s.base}/graphql`);
    expect(out).toContain('startBackup(input:');
    expect(out).toContain('cloud "demo-cloud" created');

    // The credentials file is private, and its secret never reaches the console.
    expect(statSync(credentialsFile()).mode & 0o777).toBe(0o600);
    const creds = JSON.parse(readFileSync(credentialsFile(), 'utf8'));
    expect(creds.grant_type).toBe('client_credentials');
    expect(out).not.toContain(creds.client_secret);
    firstClientId = creds.client_id;

    const tok = await token(s);
    const catalog = await gql(s, tok, CATALOG);
    expect(catalog.clouds.totalCount).toBe(1);
    const cloud = catalog.clouds.edges[0].node;
    expect(cloud.name).toBe('demo-cloud');
    expect(cloud.keystoneUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/identity\/v3$/);
    expect(cloud.authDomains.map((d: any) => d.name).sort()).toEqual(['Default', 'lab2']);
    expect(catalog.backupDestinations.edges.map((e: any) => e.node)).toEqual([
      { name: 'demo-local-backups', kind: 'FILE_SYSTEM', url: expect.stringContaining(path.join(dataDir, 'demo-backups')), isDefault: true },
    ]);
    expect(catalog.policies.edges.map((e: any) => e.node.name)).toEqual(['demo-policy']);
    expect(catalog.serviceAccounts.edges.map((e: any) => e.node)).toEqual([{ name: 'demo-admin', role: 'ADMIN' }]);

    const syncs = await syncsDone(s, tok, 1);
    expect(syncs[0]).toMatchObject({ state: 'SUCCEEDED', error: null });
    const instances = await gql(s, tok, INSTANCES);
    firstInstances = summary(instances);
    expect(firstInstances).toEqual([
      { name: 'app-a1', present: true, volumes: ['app-a1-data'] },
      { name: 'app-b1', present: true, volumes: ['app-b1-data'] },
      { name: 'db-1', present: true, volumes: ['db-1-data'] },
      { name: 'sb-backup-proxy', present: true, volumes: [] },
      { name: 'web-1', present: true, volumes: ['web-1-data', 'web-1-root'] },
    ]);

    // Press backup: the demo's data mover backs web-1 up through the proxy VM into the demo destination.
    const web1 = instances.instances.edges.find((e: any) => e.node.name === 'web-1').node;
    const started = await gql(s, tok, `mutation($i: ID!) { startBackup(input: {instanceId: $i}) { task { id } userErrors { code message } } }`, { i: web1.id });
    expect(started.startBackup.userErrors).toEqual([]);
    const task = await until('the backup to finish', async () => {
      const t = (await gql(s, tok, `query($id: ID!) { node(id: $id) { ... on Task { state error progress backup { state frontEndBytes storedBytes disks { name } } } } }`, { id: started.startBackup.task.id })).node;
      return ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(t.state) ? t : undefined;
    });
    expect(task).toMatchObject({ state: 'SUCCEEDED', error: null, progress: 1, backup: { state: 'AVAILABLE' } });
    expect(task.backup.disks.map((d: any) => d.name).sort()).toEqual(['web-1-data', 'web-1-root']);
    expect(Number(task.backup.storedBytes)).toBeGreaterThan(0);
    await stopServe(s);
  }, 150_000); // spawns `serve --demo` (tsx, migrations, first sync): ~60 s on a loaded 2-core machine

  it('a second start on the same data folder finds everything and adds no duplicates', async () => {
    const s = await startServe();
    expect(s.output()).toContain('cloud "demo-cloud" found');
    expect(s.output()).toContain('default destination "demo-local-backups" found, policy "demo-policy" found');
    // Same account, same credentials file: the first start's secret still works.
    expect(JSON.parse(readFileSync(credentialsFile(), 'utf8')).client_id).toBe(firstClientId);
    const tok = await token(s);

    const catalog = await gql(s, tok, CATALOG);
    expect([catalog.clouds.totalCount, catalog.backupDestinations.totalCount, catalog.policies.totalCount, catalog.serviceAccounts.edges.length]).toEqual([1, 1, 1, 1]);

    // The restart queued a new sync; the simulator's fixed IDs make it find the same instances.
    const syncs = await syncsDone(s, tok, 2);
    expect(syncs.map((t: any) => t.state)).toEqual(['SUCCEEDED', 'SUCCEEDED']);
    const instances = await gql(s, tok, INSTANCES);
    expect(instances.instances.totalCount).toBe(5);
    expect(summary(instances)).toEqual(firstInstances);
    await stopServe(s);
  });
});
