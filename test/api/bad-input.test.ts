// Bad input gets a clear error — a GraphQL error for malformed requests, a userError with a
// stable code for refused values — and changes nothing: every table's rows are identical
// before and after the whole battery.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Cloud, Instance, Project } from '../../src/db/entities/index.ts';
import * as G from '../generated/graphql.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { op, snapshot } from '../helpers/ops.ts';
import { gid, seeder } from '../helpers/seed.ts';

describe('bad input', () => {
  let t: TestApp;
  let admin: string;
  let cloud: Cloud;
  let project: Project;
  let vm: Instance;
  let policyId: string;
  let quotaId: string;
  let before: Record<string, string>;

  beforeAll(async () => {
    t = await startTestApp();
    admin = await t.login('ADMIN');
    const s = seeder(t.services.orm);
    cloud = await s.cloud();
    project = await s.project(cloud);
    [vm] = await s.instances(project, 1);
    policyId = gid('Policy', (await s.policy()).id);
    const q = await op(t, admin, G.CreateQuotaDocument, { input: { name: 'q', action: 'BACKUP', scope: 'PROJECT', measure: 'COUNT', windowSeconds: 3600, hardLimit: 5 } });
    quotaId = q.data!.quotaCreate.quota!.id;
    before = await snapshot(t);
  });
  afterAll(() => t?.close());

  const okCloud = { name: 'c', keystoneUrl: 'https://ks.example/v3', region: 'r', authDomains: [{ name: 'D', username: 'u', password: 'p', defaultProject: 'a' }] };

  it('malformed GraphQL is a GraphQL error', async () => {
    for (const [query, re] of [
      ['{ instances { ', /Syntax Error/],
      ['{ nope }', /Cannot query field "nope"|Unknown field selected \(Query.nope\)/],
      ['mutation { cloudCreate(input: { name: 1 }) { userErrors { code } } }', /String cannot represent|Field .* required/],
      ['mutation { quotaCreate(input: { name: "x", action: SOMETIMES, scope: PROJECT, measure: COUNT, windowSeconds: 60 }) { userErrors { code } } }', /Value "SOMETIMES" does not exist/],
    ] as const) {
      const res = await t.gql(admin, query);
      expect(res.data ?? null, query).toBeNull();
      expect(res.errors?.[0]?.message, query).toMatch(re);
    }
    const res = await t.fetch('/graphql', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"query": ' });
    expect(res.status).toBe(400);
  });

  it('unknown, malformed and wrong-type IDs are NOT_FOUND userErrors', async () => {
    const wrong = [gid('Project', project.id), 'garbage', gid('Cloud', '0190aaaa-0000-7000-8000-000000000000')];
    for (const id of wrong) {
      const u = await op(t, admin, G.UpdateCloudDocument, { input: { id, region: 'x' } });
      expect(u.data!.cloudUpdate).toMatchObject({ cloud: null, userErrors: [{ code: 'NOT_FOUND', field: ['input', 'id'] }] });
    }
    const assign = await op(t, admin, G.AssignPolicyDocument, { input: { policyId, instanceIds: [gid('Instance', vm.id), gid('Project', project.id)] } });
    expect(assign.data!.policyAssign.userErrors).toEqual([{ code: 'NOT_FOUND', field: ['input', 'instanceIds', '1'], message: expect.stringContaining('no Instance') }]);
    const qa = await op(t, admin, G.AssignQuotaDocument, { input: { quotaId, projectIds: [gid('Project', project.id), gid('Instance', vm.id)] } });
    expect(qa.data!.quotaAssign.userErrors[0]).toMatchObject({ code: 'NOT_FOUND', field: ['input', 'projectIds', '1'] });
    // The policy row would be created before its references are checked: the transaction drops it.
    const pc = await op(t, admin, G.CreatePolicyDocument, { input: { name: 'half', destinationId: gid('Cloud', cloud.id) } });
    expect(pc.data!.policyCreate.userErrors[0]).toMatchObject({ code: 'NOT_FOUND', field: ['input', 'destinationId'] });
    const dc = await op(t, admin, G.CreateDestinationDocument, { input: { name: 'd', kind: 'FILE_SYSTEM', url: 'file:///x', nodeConfigurationIds: ['nope'] } });
    expect(dc.data!.backupDestinationCreate.userErrors[0]).toMatchObject({ code: 'NOT_FOUND', field: ['input', 'nodeConfigurationIds', '0'] });
  });

  it('oversized strings and lists are refused', async () => {
    const long = await op(t, admin, G.CreateCloudDocument, { input: { ...okCloud, name: 'x'.repeat(201) } });
    expect(long.data!.cloudCreate.userErrors[0]).toMatchObject({ code: 'INVALID', field: ['input', 'name'] });
    const huge = await op(t, admin, G.CreateCloudDocument, { input: { ...okCloud, name: 'x'.repeat(30_000) } });
    expect(huge.data ?? null).toBeNull();
    expect(huge.errors?.[0]).toMatchObject({ message: expect.stringMatching(/longer than 20000/), extensions: { code: 'INPUT_TOO_LARGE' } });
    const literal = await t.gql(admin, `mutation { nodeConfigurationCreate(input: { name: "${'y'.repeat(25_000)}" }) { userErrors { code } } }`);
    expect(literal.errors?.[0]?.extensions?.code).toMatch(/INPUT_TOO_LARGE|GRAPHQL_PARSE_FAILED|BAD_USER_INPUT/);
    const manyIds = await op(t, admin, G.AssignPolicyDocument, { input: { policyId, instanceIds: Array.from({ length: 1001 }, () => gid('Instance', vm.id)) } });
    expect(manyIds.errors?.[0]).toMatchObject({ extensions: { code: 'INPUT_TOO_LARGE' } });
    const tooManyIds = await op(t, admin, G.AssignPolicyDocument, { input: { policyId, instanceIds: Array.from({ length: 501 }, () => gid('Instance', vm.id)) } });
    expect(tooManyIds.data!.policyAssign.userErrors[0]).toMatchObject({ code: 'INVALID', field: ['input', 'instanceIds'] });
    const domains = await op(t, admin, G.CreateCloudDocument, { input: { ...okCloud, authDomains: Array.from({ length: 51 }, (_, i) => ({ name: `d${i}`, username: 'u', password: 'p', defaultProject: 'a' })) } });
    expect(domains.data!.cloudCreate.userErrors[0]).toMatchObject({ code: 'INVALID', field: ['input', 'authDomains'] });
  });

  it('invalid Keystone URLs are refused', async () => {
    for (const url of ['ftp://ks.example/v3', 'https://ks.example/v2.0', 'https://ks.example/', 'https://admin:pw@ks.example/v3', 'ks.example/v3', 'javascript:alert(1)//v3']) {
      const res = await op(t, admin, G.CreateCloudDocument, { input: { ...okCloud, keystoneUrl: url } });
      expect(res.data!.cloudCreate.userErrors[0], url).toMatchObject({ code: 'INVALID', field: ['input', 'keystoneUrl'], message: expect.stringMatching(/Keystone v3/) });
    }
    const dup = await op(t, admin, G.CreateCloudDocument, { input: { ...okCloud, authDomains: [okCloud.authDomains[0]!, okCloud.authDomains[0]!] } });
    expect(dup.data!.cloudCreate.userErrors[0]).toMatchObject({ code: 'INVALID', field: ['input', 'authDomains'] });
  });

  it('invalid schedules and retention are refused with the field at fault', async () => {
    const cases: [Record<string, unknown>, string[]][] = [
      [{ timesOfDay: ['25:00'], windowMinutes: 60 }, ['schedules', '0', 'timesOfDay', '0']],
      [{ timesOfDay: ['1:00'], windowMinutes: 60 }, ['schedules', '0', 'timesOfDay', '0']],
      [{ timesOfDay: ['01:00'], daysOfWeek: [0], windowMinutes: 60 }, ['schedules', '0', 'daysOfWeek', '0']],
      [{ timesOfDay: ['01:00'], daysOfWeek: [8], windowMinutes: 60 }, ['schedules', '0', 'daysOfWeek', '0']],
      [{ timesOfDay: ['01:00'], daysOfWeek: [1, 1], windowMinutes: 60 }, ['schedules', '0', 'daysOfWeek']],
      [{ timesOfDay: ['01:00'], intervalHours: 2, windowMinutes: 60 }, ['schedules', '0']],
      [{ windowMinutes: 60 }, ['schedules', '0']],
      [{ timesOfDay: ['01:00'], windowMinutes: 0 }, ['schedules', '0', 'windowMinutes']],
      [{ timesOfDay: ['01:00'], betweenHours: { from: 8, to: 20 }, windowMinutes: 10 }, ['schedules', '0', 'betweenHours']],
      [{ intervalHours: 4, betweenHours: { from: 20, to: 8 }, windowMinutes: 10 }, ['schedules', '0', 'betweenHours']],
      [{ intervalHours: 25, windowMinutes: 10 }, ['schedules', '0', 'intervalHours']],
      [{ timesOfDay: ['01:00'], windowMinutes: 10, timeZone: 'Mars/Olympus' }, ['schedules', '0', 'timeZone']],
    ];
    for (const [schedule, field] of cases) {
      const res = await op(t, admin, G.CreatePolicyDocument, { input: { name: 'p', schedules: [schedule as never] } });
      expect(res.errors, JSON.stringify(schedule)).toBeUndefined();
      expect(res.data!.policyCreate.policy).toBeNull();
      expect(res.data!.policyCreate.userErrors[0], JSON.stringify(schedule)).toMatchObject({ code: 'INVALID', field: ['input', ...field] });
    }
    const retention = await op(t, admin, G.CreatePolicyDocument, { input: { name: 'p', retention: { keepLastFull: -1 } } });
    expect(retention.data!.policyCreate.userErrors[0]).toMatchObject({ code: 'INVALID', field: ['input', 'retention', 'keepLastFull'] });
    const rule = await op(t, admin, G.CreatePolicyDocument, { input: { name: 'p', rules: [{}] } });
    expect(rule.data!.policyCreate.userErrors[0]).toMatchObject({ code: 'INVALID', field: ['input', 'rules', '0'] });
    const priority = await op(t, admin, G.UpdatePolicyDocument, { input: { id: policyId, priority: 101 } });
    expect(priority.data!.policyUpdate.userErrors[0]).toMatchObject({ code: 'INVALID', field: ['input', 'priority'] });
  });

  it('too deep, too many aliases and too costly queries are refused before running', async () => {
    let deep = 'id';
    for (let i = 0; i < 8; i++) deep = `policy { destination { id } } project { id } zone { id } flavor { id } volumes { instance { ${deep} } }`;
    const d = await t.gql(admin, `{ instances { edges { node { ${deep} } } } }`);
    expect(d.data ?? null).toBeNull();
    expect(d.errors?.[0]?.message).toMatch(/depth|cost/i);
    const aliases = Array.from({ length: 20 }, (_, i) => `a${i}: viewer { name }`).join(' ');
    const a = await t.gql(admin, `{ ${aliases} }`);
    expect(a.errors?.[0]?.message).toMatch(/aliases/i);
    const costly = await t.gql(admin, `{ a: instances(first: 100) { edges { node { volumes { instance { volumes { instance { volumes { id } } } } } } } } }`);
    expect(costly.errors?.[0]).toMatchObject({ extensions: { code: 'QUERY_TOO_COSTLY', maxCost: 10000 } });
  });

  it('changed nothing at all', async () => {
    expect(await snapshot(t)).toEqual(before);
  });
});
