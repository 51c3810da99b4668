// Service accounts through GraphQL: ADMIN only; projects by global ID or OpenStack ID; the
// secret shows once and its hash never.
import { encodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditEntry } from '../../src/db/entities/index.ts';
import { systemFork } from '../../src/db/orm.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { seedTenants, type Seed } from '../helpers/tenant-seed.ts';

const CREATE = `mutation($input: ServiceAccountCreateInput!) {
  serviceAccountCreate(input: $input) { clientSecret serviceAccount { id name role enabled clientId projectIds } userErrors { code field message } } }`;
const UPDATE = `mutation($input: ServiceAccountUpdateInput!) {
  serviceAccountUpdate(input: $input) { serviceAccount { id enabled projectIds } userErrors { code field } } }`;
const ROTATE = `mutation($input: ServiceAccountRotateSecretInput!) {
  serviceAccountRotateSecret(input: $input) { clientSecret userErrors { code } } }`;

describe('service accounts in GraphQL', () => {
  let t: TestApp;
  let seed: Seed;
  let admin: string;
  const gid = (id: string) => encodeGlobalID('Project', id);

  beforeAll(async () => {
    t = await startTestApp();
    seed = await seedTenants(systemFork(t.services.orm), t.services.secrets);
    admin = await t.login('ADMIN');
  });
  afterAll(() => t?.close());

  async function tokenFor(clientId: string, clientSecret: string) {
    const res = await t.fetch('/oauth/token', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret }) });
    return (await res.json()).access_token as string | undefined;
  }

  it('creates a TENANT from a global ID and an OpenStack ID; the secret works once shown', async () => {
    const res = await t.gql(admin, CREATE, { input: { name: 'tenant-portal', role: 'TENANT', projectIds: [gid(seed.alpha.project.id), 'bravo-os-project'] } });
    const p = res.data.serviceAccountCreate;
    expect(p.userErrors).toEqual([]);
    expect(p.serviceAccount).toMatchObject({ name: 'tenant-portal', role: 'TENANT', enabled: true });
    expect(p.serviceAccount.projectIds.sort()).toEqual([gid(seed.alpha.project.id), gid(seed.bravo.project.id)].sort());
    const token = await tokenFor(p.serviceAccount.clientId, p.clientSecret);
    expect((await t.gql(token!, '{ viewer { role allProjects } }')).data.viewer).toEqual({ role: 'TENANT', allProjects: false });
  });

  it('answers userErrors for bad projects and roles, and creates nothing', async () => {
    const before = (await t.gql(admin, '{ serviceAccounts(first: 100) { edges { node { id } } } }')).data.serviceAccounts.edges.length;
    const cases: [Record<string, unknown>, string][] = [
      [{ name: 'a', role: 'TENANT', projectIds: [] }, 'TENANT_NEEDS_PROJECTS'],
      [{ name: 'b', role: 'OPERATOR', projectIds: [gid(seed.alpha.project.id)] }, 'PROJECTS_ONLY_FOR_TENANTS'],
      [{ name: 'c', role: 'TENANT', projectIds: ['nope'] }, 'UNKNOWN_PROJECT'],
      [{ name: 'd', role: 'TENANT', projectIds: [encodeGlobalID('Instance', seed.alpha.instance.id)] }, 'UNKNOWN_PROJECT'],
      [{ name: 'e', role: 'TENANT', projectIds: [encodeGlobalID('Project', '00000000-0000-7000-8000-000000000000')] }, 'UNKNOWN_PROJECT'],
      [{ name: '', role: 'ADMIN' }, 'INVALID'],
      [{ name: 'x'.repeat(201), role: 'ADMIN' }, 'INVALID'],
      [{ name: 'f', role: 'TENANT', projectIds: Array.from({ length: 101 }, () => gid(seed.alpha.project.id)) }, 'TOO_MANY'],
    ];
    for (const [input, code] of cases) {
      const res = await t.gql(admin, CREATE, { input });
      expect(res.data.serviceAccountCreate.userErrors[0].code, JSON.stringify(input).slice(0, 80)).toBe(code);
      expect(res.data.serviceAccountCreate.serviceAccount).toBeNull();
      expect(res.data.serviceAccountCreate.clientSecret).toBeNull();
    }
    const after = (await t.gql(admin, '{ serviceAccounts(first: 100) { edges { node { id } } } }')).data.serviceAccounts.edges.length;
    expect(after).toBe(before);
  });

  it('changes projects and the enabled flag; refuses to disable itself; rotates secrets', async () => {
    const created = (await t.gql(admin, CREATE, { input: { name: 'changing', role: 'TENANT', projectIds: ['alpha-os-project'] } })).data.serviceAccountCreate;
    const id = created.serviceAccount.id;
    const moved = await t.gql(admin, UPDATE, { input: { id, projectIds: [gid(seed.charlie.project.id)] } });
    expect(moved.data.serviceAccountUpdate.serviceAccount.projectIds).toEqual([gid(seed.charlie.project.id)]);

    const me = (await t.gql(admin, '{ viewer { name } }')).data.viewer.name;
    const all = (await t.gql(admin, '{ serviceAccounts(first: 100) { edges { node { id name } } } }')).data.serviceAccounts.edges;
    const myId = all.find((e: any) => e.node.name === me).node.id;
    expect((await t.gql(admin, UPDATE, { input: { id: myId, enabled: false } })).data.serviceAccountUpdate.userErrors[0].code).toBe('CANNOT_DISABLE_SELF');
    expect((await t.gql(admin, UPDATE, { input: { id: 'bogus', enabled: false } })).data.serviceAccountUpdate.userErrors[0].code).toBe('NOT_FOUND');
    expect((await t.gql(admin, UPDATE, { input: { id: gid(seed.alpha.project.id), enabled: false } })).data.serviceAccountUpdate.userErrors[0].code).toBe('NOT_FOUND');

    const rotated = await t.gql(admin, ROTATE, { input: { id } });
    const secret = rotated.data.serviceAccountRotateSecret.clientSecret;
    expect(await tokenFor(created.serviceAccount.clientId, created.clientSecret)).toBeUndefined();
    expect(await tokenFor(created.serviceAccount.clientId, secret)).toBeTypeOf('string');
  });

  it('pages service accounts with first/after and last/before, and refuses sizes over 100', async () => {
    const first = await t.gql(admin, '{ serviceAccounts(first: 2) { edges { cursor node { name } } pageInfo { hasNextPage endCursor } } }');
    expect(first.data.serviceAccounts.edges).toHaveLength(2);
    expect(first.data.serviceAccounts.pageInfo.hasNextPage).toBe(true);
    const next = await t.gql(admin, `{ serviceAccounts(first: 2, after: "${first.data.serviceAccounts.pageInfo.endCursor}") { edges { node { name } } } }`);
    expect(next.data.serviceAccounts.edges[0].node.name).not.toBe(first.data.serviceAccounts.edges[1].node.name);
    const last = await t.gql(admin, '{ serviceAccounts(last: 1) { edges { node { name } } pageInfo { hasPreviousPage } } }');
    expect(last.data.serviceAccounts.edges).toHaveLength(1);
    const big = await t.gql(admin, '{ serviceAccounts(first: 101) { edges { node { name } } } }');
    expect(big.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });

  it('is ADMIN only: every other role is refused, and a node lookup answers null', async () => {
    const all = (await t.gql(admin, '{ serviceAccounts(first: 1) { edges { node { id } } } }')).data.serviceAccounts.edges;
    const mine = await t.gql(admin, `{ node(id: "${all[0].node.id}") { id ... on ServiceAccount { name } } }`);
    expect(mine.data.node.id).toBe(all[0].node.id);
    for (const role of ['OPERATOR', 'BILLING', 'TENANT'] as const) {
      const token = await t.login(role, role === 'TENANT' ? [seed.alpha.project.id] : undefined);
      const list = await t.gql(token, '{ serviceAccounts(first: 10) { edges { node { id } } } }');
      expect(list.data ?? null).toBeNull();
      expect(list.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
      const create = await t.gql(token, CREATE, { input: { name: `sneaky-${role}`, role: 'ADMIN' } });
      expect(create.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
      const rotate = await t.gql(token, ROTATE, { input: { id: all[0].node.id } });
      expect(rotate.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
      const node = await t.gql(token, `{ node(id: "${all[0].node.id}") { id } }`);
      expect(node.data?.node ?? null).toBeNull();
    }
  });

  it('audits every change with the acting account, without secrets', async () => {
    const rows = await systemFork(t.services.orm).find(AuditEntry, { objectType: 'ServiceAccount', action: { $like: 'service-account.%' } });
    const actions = new Set(rows.map((r) => r.action));
    expect([...actions].sort()).toEqual(['service-account.create', 'service-account.rotate-secret', 'service-account.update']);
    for (const r of rows) expect(r.accountName).toMatch(/^admin-/);
    expect(JSON.stringify(rows.map((r) => r.details))).not.toMatch(/secret|scrypt/i);
  });

  it('never sends a secret hash', () => {
    const bodies = t.responses.join('\n');
    expect(bodies).not.toMatch(/scrypt\$/);
    expect(bodies).not.toMatch(/secretHash|secret_hash/);
  });
});
