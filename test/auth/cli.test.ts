// `strongbox service-account …` run for real (node + tsx, on the test database); the printed
// credentials are then used at /oauth/token.
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { encodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemFork } from '../../src/db/orm.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { seedTenants, type Seed } from '../helpers/tenant-seed.ts';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '../..');

describe('strongbox service-account (CLI)', () => {
  let t: TestApp;
  let seed: Seed;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    t = await startTestApp();
    seed = await seedTenants(systemFork(t.services.orm), t.services.secrets);
    env = {
      ...process.env,
      DATABASE_URL: t.databaseUrl,
      STRONGBOX_DATA_DIR: mkdtempSync(path.join(os.tmpdir(), 'strongbox-cli-')),
      STRONGBOX_MASTER_KEY: t.services.config.masterKey,
    };
  });
  afterAll(() => t?.close());

  async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'src/main.ts', 'service-account', ...args], { cwd: root, env });
      return { code: 0, stdout, stderr };
    } catch (e) {
      const err = e as { code: number; stdout: string; stderr: string };
      return { code: err.code, stdout: err.stdout, stderr: err.stderr };
    }
  }

  async function token(creds: { clientId: string; clientSecret: string }) {
    const res = await t.fetch('/oauth/token', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: creds.clientId, client_secret: creds.clientSecret }),
    });
    return { status: res.status, body: await res.json() };
  }

  it('creates a TENANT from a global ID and an OpenStack project ID, whose token is scoped to them; list/disable/enable/rotate-secret work', async () => {
    const created = await cli('create', '--name', 'portal-alpha', '--role', 'TENANT',
      '--project', encodeGlobalID('Project', seed.alpha.project.id), '--project', seed.charlie.project.externalId);
    expect(created.code).toBe(0);
    const creds = JSON.parse(created.stdout);
    expect(Object.keys(creds).sort()).toEqual(['clientId', 'clientSecret']);

    const issued = await token(creds);
    expect(issued.status).toBe(200);
    const viewer = await t.gql(issued.body.access_token, '{ viewer { name role allProjects } }');
    expect(viewer.data.viewer).toEqual({ name: 'portal-alpha', role: 'TENANT', allProjects: false });
    const admin = await t.login('ADMIN');
    const accounts = await t.gql(admin, '{ serviceAccounts(first: 100) { edges { node { name projectIds } } } }');
    const mine = accounts.data.serviceAccounts.edges.find((e: any) => e.node.name === 'portal-alpha').node;
    expect(mine.projectIds.sort()).toEqual([encodeGlobalID('Project', seed.alpha.project.id), encodeGlobalID('Project', seed.charlie.project.id)].sort());

    const listed = await cli('list');
    expect(listed.code).toBe(0);
    const rows = listed.stdout.trim().split('\n').map((l) => JSON.parse(l));
    const row = rows.find((r) => r.name === 'portal-alpha');
    expect(row).toMatchObject({ role: 'TENANT', clientId: creds.clientId, enabled: true });
    expect(row.projects.sort()).toEqual(['alpha-os-project', 'charlie-os-project']);
    expect(listed.stdout).not.toMatch(/scrypt|secret/i);

    expect((await cli('disable', 'portal-alpha')).code).toBe(0);
    expect((await t.gql(issued.body.access_token, '{ viewer { name } }')).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect((await token(creds)).body.error).toBe('invalid_client');

    expect((await cli('enable', creds.clientId)).code).toBe(0);
    expect((await token(creds)).status).toBe(200);

    const rotated = await cli('rotate-secret', 'portal-alpha');
    const fresh = JSON.parse(rotated.stdout);
    expect(fresh.clientId).toBe(creds.clientId);
    expect(fresh.clientSecret).not.toBe(creds.clientSecret);
    expect((await token(creds)).body.error).toBe('invalid_client');
    expect((await token(fresh)).status).toBe(200);
  }, 240_000);

  it('creates an ADMIN without projects, and refuses bad input with a message and exit code', async () => {
    const admin = await cli('create', '--name', 'msp-admin', '--role', 'ADMIN');
    expect(admin.code).toBe(0);
    expect((await token(JSON.parse(admin.stdout))).status).toBe(200);

    const cases = [
      [['create', '--name', 'x', '--role', 'ROOT'], 2, /--role/],
      [['create', '--name', 'tenant-without-projects', '--role', 'TENANT'], 1, /needs at least one project/],
      [['create', '--name', 'op', '--role', 'OPERATOR', '--project', seed.alpha.project.externalId], 1, /only TENANT/],
      [['create', '--name', 'ghost', '--role', 'TENANT', '--project', 'no-such-project'], 1, /no project/],
      [['create', '--name', 'msp-admin', '--role', 'ADMIN'], 1, /exists/],
      [['disable', 'nobody'], 1, /no service account/],
    ] as const;
    // Three at a time: each is a Node process starting tsx.
    for (let i = 0; i < cases.length; i += 3) {
      const batch = cases.slice(i, i + 3);
      const results = await Promise.all(batch.map(([args]) => cli(...args)));
      for (const [j, res] of results.entries()) {
        const [args, code, message] = batch[j]!;
        expect(res.code, args.join(' ')).toBe(code);
        expect(res.stderr).toMatch(message);
        expect(res.stdout).toBe('');
      }
    }
  }, 240_000);

  it('rotates the signing key: the new kid is served in the JWKS next to the old one', async () => {
    const before = (await (await t.fetch('/.well-known/jwks.json')).json()).keys.map((k: { kid: string }) => k.kid);
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'src/main.ts', 'signing-key', 'rotate'], { cwd: root, env });
    const { kid } = JSON.parse(stdout);
    const after = (await (await t.fetch('/.well-known/jwks.json')).json()).keys.map((k: { kid: string }) => k.kid);
    expect(after).toContain(kid);
    for (const old of before) expect(after).toContain(old);
  }, 120_000);
});
