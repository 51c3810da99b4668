// Reading the domain: node/nodes with good, bad and foreign IDs, keyset pagination, filters,
// and who may list what (a TENANT sees only its projects' rows and what is visible to them).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cloud, Instance, Policy, Project } from '../../src/db/entities/index.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { gid, seeder } from '../helpers/seed.ts';

describe('domain queries', () => {
  let t: TestApp;
  let admin: string;
  let cloud: Cloud;
  let p1: Project;
  let p2: Project;
  let vms1: Instance[];
  let vms2: Instance[];
  let pAll: Policy;
  let pChosen1: Policy;
  let pChosen2: Policy;
  let tenant1: string;

  beforeAll(async () => {
    t = await startTestApp();
    const s = seeder(t.services.orm);
    cloud = await s.cloud();
    p1 = await s.project(cloud, 'alpha');
    p2 = await s.project(cloud, 'beta');
    pAll = await s.policy({ name: 'gold' });
    pChosen1 = await s.policy({ name: 'silver', visibility: 'CHOSEN_PROJECTS', projects: [p1, p2] });
    pChosen2 = await s.policy({ name: 'bronze', visibility: 'CHOSEN_PROJECTS', projects: [p2] });
    vms1 = await s.instances(p1, 5, { policy: pAll });
    vms1.push(...(await s.instances(p1, 1, { present: false, name: 'gone-vm' })));
    vms2 = await s.instances(p2, 3);
    await s.destination({ name: 'shared' });
    await s.destination({ name: 'private-2', visibility: 'CHOSEN_PROJECTS', projects: [p2] });
    admin = await t.login('ADMIN');
    tenant1 = await t.login('TENANT', [p1.id]);
  });
  afterAll(() => t?.close());

  it('node() loads by global ID and answers null for malformed, unknown, wrong-type and foreign IDs', async () => {
    const id = gid('Instance', vms1[0]!.id);
    const ok = await t.gql(admin, 'query($id: ID!) { node(id: $id) { id ... on Instance { name project { name } } } }', { id });
    expect(ok.errors).toBeUndefined();
    expect(ok.data.node).toMatchObject({ id, project: { name: 'alpha' } });

    const bad = ['!!!', 'aGVsbG8=', gid('Nope', vms1[0]!.id), gid('Instance', 'not-a-uuid'), gid('Instance', '0190aaaa-0000-7000-8000-000000000000'), gid('Project', vms1[0]!.id), gid('Query', vms1[0]!.id)];
    for (const b of bad) {
      const res = await t.gql(admin, 'query($id: ID!) { node(id: $id) { id } }', { id: b });
      expect(res.errors, b).toBeUndefined();
      expect(res.data.node, b).toBeNull();
    }
    // A tenant gets null for another project's instance, exactly as for a missing one.
    const foreign = await t.gql(tenant1, 'query($id: ID!) { node(id: $id) { id } }', { id: gid('Instance', vms2[0]!.id) });
    expect(foreign).toEqual({ data: { node: null }, extensions: expect.anything() });
  });

  it('nodes() keeps order, batches, and answers null per invisible ID', async () => {
    const ids = [gid('Instance', vms1[0]!.id), gid('Instance', vms2[0]!.id), 'garbage', gid('Project', p1.id), gid('Project', p2.id)];
    const res = await t.gql(tenant1, 'query($ids: [ID!]!) { nodes(ids: $ids) { id } }', { ids });
    expect(res.errors).toBeUndefined();
    expect(res.data.nodes).toEqual([{ id: ids[0] }, null, null, { id: ids[3] }, null]);
    const tooMany = await t.gql(admin, 'query($ids: [ID!]!) { nodes(ids: $ids) { id } }', { ids: Array.from({ length: 101 }, () => ids[0]) });
    expect(tooMany.errors?.[0]?.message).toMatch(/at most 100/);
  });

  it('pages forwards with first/after and backwards with last/before, in creation order', async () => {
    const q = `query($first: Int, $after: String, $last: Int, $before: String) {
      instances(first: $first, after: $after, last: $last, before: $before) {
        totalCount edges { cursor node { name } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }`;
    const all = [...vms1, ...vms2].map((v) => v.name);
    const page1 = await t.gql(admin, q, { first: 4 });
    expect(page1.errors).toBeUndefined();
    expect(page1.data.instances.edges.map((e: any) => e.node.name)).toEqual(all.slice(0, 4));
    expect(page1.data.instances.totalCount).toBe(9);
    expect(page1.data.instances.pageInfo).toMatchObject({ hasNextPage: true, hasPreviousPage: false });
    const page2 = await t.gql(admin, q, { first: 4, after: page1.data.instances.pageInfo.endCursor });
    expect(page2.data.instances.edges.map((e: any) => e.node.name)).toEqual(all.slice(4, 8));
    const page3 = await t.gql(admin, q, { first: 4, after: page2.data.instances.pageInfo.endCursor });
    expect(page3.data.instances.edges.map((e: any) => e.node.name)).toEqual(all.slice(8));
    expect(page3.data.instances.pageInfo).toMatchObject({ hasNextPage: false, hasPreviousPage: true });

    const last = await t.gql(admin, q, { last: 3 });
    expect(last.data.instances.edges.map((e: any) => e.node.name)).toEqual(all.slice(6));
    expect(last.data.instances.pageInfo).toMatchObject({ hasPreviousPage: true });
    const before = await t.gql(admin, q, { last: 3, before: last.data.instances.pageInfo.startCursor });
    expect(before.data.instances.edges.map((e: any) => e.node.name)).toEqual(all.slice(3, 6));
  });

  it('refuses page sizes outside 1–100 and bad cursors with a clear error', async () => {
    for (const [args, re] of [
      ['first: 0', /first must be between 1 and 100/],
      ['first: 101', /first must be between 1 and 100/],
      ['last: 0', /last must be between 1 and 100/],
      ['last: 101', /last must be between 1 and 100/],
      ['first: -5', /first must be between 1 and 100/],
      ['first: 2, after: "bm9wZQ"', /after is not a valid cursor/],
      ['first: 2, last: 2', /either first or last/],
    ] as const) {
      const res = await t.gql(admin, `{ instances(${args}) { edges { node { id } } } }`);
      expect(res.data ?? null, args).toBeNull();
      expect(res.errors?.[0]?.message, args).toMatch(re);
      expect(res.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    }
  });

  it('filters instances by project, policy, name and presence', async () => {
    const q = 'query($f: InstanceFilter) { instances(first: 100, filter: $f) { totalCount edges { node { name present } } } }';
    expect((await t.gql(admin, q, { f: { projectId: gid('Project', p2.id) } })).data.instances.totalCount).toBe(3);
    expect((await t.gql(admin, q, { f: { policyId: gid('Policy', pAll.id) } })).data.instances.totalCount).toBe(5);
    expect((await t.gql(admin, q, { f: { present: false } })).data.instances.edges).toEqual([{ node: { name: 'gone-vm', present: false } }]);
    expect((await t.gql(admin, q, { f: { nameContains: 'GONE' } })).data.instances.totalCount).toBe(1);
    expect((await t.gql(admin, q, { f: { nameContains: '%' } })).data.instances.totalCount).toBe(0);
    // A wrong-type ID in a filter matches nothing rather than failing.
    expect((await t.gql(admin, q, { f: { projectId: gid('Policy', pAll.id) } })).data.instances.totalCount).toBe(0);
  });

  it('a TENANT lists only its projects, its instances (also gone ones), and visible policies and destinations', async () => {
    const res = await t.gql(tenant1, `{
      projects { totalCount edges { node { name cloud { id } } } }
      instances(first: 100) { totalCount edges { node { name present project { name } policy { name } } } }
      policies { edges { node { name projects { name } } } }
      backupDestinations { edges { node { name projects { name } nodeConfigurations { id } } } }
    }`);
    expect(res.errors).toBeUndefined();
    expect(res.data.projects).toEqual({ totalCount: 1, edges: [{ node: { name: 'alpha', cloud: null } }] });
    expect(res.data.instances.totalCount).toBe(6);
    expect(res.data.instances.edges.every((e: any) => e.node.project.name === 'alpha')).toBe(true);
    expect(res.data.instances.edges.some((e: any) => e.node.present === false)).toBe(true);
    expect(res.data.policies.edges.map((e: any) => e.node)).toEqual([
      { name: 'gold', projects: [] },
      { name: 'silver', projects: [{ name: 'alpha' }] },
    ]);
    expect(res.data.backupDestinations.edges.map((e: any) => e.node.name)).toEqual(['shared']);
    void pChosen1;
    void pChosen2;
  });

  it('a TENANT of two projects sees a policy chosen for both once, and pages through visible rows without repeats', async () => {
    const both = await t.login('TENANT', [p1.id, p2.id]);
    const res = await t.gql(both, '{ policies(first: 100) { totalCount edges { node { name projects { name } } } } }');
    expect(res.errors).toBeUndefined();
    expect(res.data.policies.edges.map((e: any) => e.node.name)).toEqual(['gold', 'silver', 'bronze']);
    expect(res.data.policies.totalCount).toBe(3);
    const first = await t.gql(both, '{ policies(first: 2) { edges { node { name } } pageInfo { hasNextPage endCursor } } }');
    expect(first.data.policies.edges.map((e: any) => e.node.name)).toEqual(['gold', 'silver']);
    expect(first.data.policies.pageInfo.hasNextPage).toBe(true);
  });

  it('zones: a TENANT reads the zones visible to its projects only', async () => {
    const s = seeder(t.services.orm);
    const open = await s.zone(cloud);
    const mine = await s.zone(cloud, { visibility: 'CHOSEN_PROJECTS', projects: [p1] });
    const theirs = await s.zone(cloud, { visibility: 'CHOSEN_PROJECTS', projects: [p2] });
    const ids = [open, mine, theirs].map((z) => gid('AvailabilityZone', z.id));
    const res = await t.gql(tenant1, 'query($ids: [ID!]!) { nodes(ids: $ids) { id ... on AvailabilityZone { visibility projects { name } cloud { id } storageProvider { id } } } }', { ids });
    expect(res.errors).toBeUndefined();
    expect(res.data.nodes).toEqual([
      { id: ids[0], visibility: 'ALL_PROJECTS', projects: [], cloud: null, storageProvider: null },
      { id: ids[1], visibility: 'CHOSEN_PROJECTS', projects: [{ name: 'alpha' }], cloud: null, storageProvider: null },
      null,
    ]);
    const listed = await t.gql(tenant1, '{ availabilityZones(first: 100) { edges { node { id } } } }');
    expect(listed.data.availabilityZones.edges.map((e: any) => e.node.id)).toEqual(ids.slice(0, 2));
    const all = await t.gql(admin, 'query($c: ID) { availabilityZones(first: 100, filter: { cloudId: $c }) { totalCount } }', { c: gid('Cloud', cloud.id) });
    expect(all.data.availabilityZones.totalCount).toBe(3);
    for (const field of ['hypervisors', 'volumeTypes', 'storageProviders']) {
      expect((await t.gql(tenant1, `{ ${field} { totalCount } }`)).errors?.[0]?.extensions?.code, field).toBe('FORBIDDEN');
      expect((await t.gql(admin, `{ ${field} { totalCount } }`)).data[field].totalCount, field).toBe(0);
    }
  });

  it('configuration lists are for ADMIN and OPERATOR only; BILLING reads what names report rows', async () => {
    const operator = await t.login('OPERATOR');
    const billing = await t.login('BILLING');
    for (const field of ['clouds', 'nodeConfigurations', 'dataMovers', 'quotas']) {
      const q = `{ ${field} { totalCount } }`;
      expect((await t.gql(admin, q)).errors, field).toBeUndefined();
      expect((await t.gql(operator, q)).errors, field).toBeUndefined();
      for (const who of [billing, tenant1]) {
        const res = await t.gql(who, q);
        expect(res.errors?.[0]?.extensions?.code, field).toBe('FORBIDDEN');
      }
      expect((await t.gql(null, q)).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    }
    const named = await t.gql(billing, '{ projects { totalCount } instances { totalCount } policies { totalCount } backupDestinations { totalCount } }');
    expect(named.errors).toBeUndefined();
    expect(named.data).toEqual({ projects: { totalCount: 2 }, instances: { totalCount: 9 }, policies: { totalCount: 3 }, backupDestinations: { totalCount: 2 } });
    const clouds = await t.gql(billing, 'query($id: ID!) { node(id: $id) { id } }', { id: gid('Cloud', cloud.id) });
    expect(clouds.data.node).toBeNull();
  });
});
