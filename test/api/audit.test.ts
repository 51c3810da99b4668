// The audit trail: every Mutation field of the schema has a case below (the first test fails
// when one is added without), and each call — valid, refused or failed — leaves exactly one
// AuditEvent with its actor, action, project and result, and no secret of its input. Task
// outcomes are recorded by the task runner. `auditEvents` and `/audit/events.csv` show a
// TENANT only its projects' events.
import { randomUUID } from 'node:crypto';
import type { GraphQLSchema } from 'graphql';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { AuditEvent, DataMover, ServiceAccount, Task } from '../../src/db/entities/index.ts';
import { systemFork } from '../../src/db/orm.ts';
import { runTask } from '../../src/engine/task-runner.ts';
import { schema } from '../../src/graphql/schema.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { gid } from '../helpers/seed.ts';
import { globalIds, seedTenants, type Seed } from '../helpers/tenant-seed.ts';

type Caller = 'admin' | 'alpha' | 'anonymous';
type Case = {
  as: Caller;
  input: (s: Seed) => Record<string, unknown>;
  /** The project the event must name (null: none). */
  project: 'alpha' | null;
  result: string;
};

const SECRET = `do-not-log-${randomUUID()}`;
const missing = (typename: string) => gid(typename, randomUUID());
const ids = (s: Seed) => ({ alpha: globalIds(s.alpha), bravo: globalIds(s.bravo) });

const cases: [field: string, c: Case][] = [
  ['availabilityZoneUpdate', { as: 'admin', input: (s) => ({ id: ids(s).alpha.AvailabilityZone, projectIds: [ids(s).alpha.Project] }), project: 'alpha', result: 'OK' }],
  ['backupDelete', { as: 'alpha', input: (s) => ({ backupId: ids(s).alpha.Backup }), project: 'alpha', result: 'OK' }],
  ['backupDestinationCreate', { as: 'admin', input: () => ({ name: 'audited-destination', kind: 'S3', url: 's3://audited-bucket/prefix', credentials: { accessKeyId: 'audited', secretAccessKey: SECRET } }), project: null, result: 'OK' }],
  ['backupDestinationDelete', { as: 'admin', input: () => ({ id: missing('BackupDestination') }), project: null, result: 'NOT_FOUND' }],
  ['backupDestinationUpdate', { as: 'admin', input: (s) => ({ id: ids(s).bravo.BackupDestination, credentials: { accessKeyId: 'audited', secretAccessKey: SECRET } }), project: null, result: 'OK' }],
  ['cancelTask', { as: 'alpha', input: (s) => ({ taskId: ids(s).alpha.Task }), project: 'alpha', result: 'OK' }],
  ['cloudCreate', { as: 'alpha', input: () => ({ name: 'x', keystoneUrl: 'http://k.test/v3', region: 'r', authDomains: [] }), project: null, result: 'FORBIDDEN' }],
  ['cloudCreate', { as: 'anonymous', input: () => ({ name: 'x', keystoneUrl: 'http://k.test/v3', region: 'r', authDomains: [] }), project: null, result: 'UNAUTHENTICATED' }],
  ['cloudDelete', { as: 'admin', input: () => ({ id: missing('Cloud') }), project: null, result: 'NOT_FOUND' }],
  ['cloudUpdate', { as: 'admin', input: (s) => ({ id: gid('Cloud', s.clouds[1]!.id), name: 'cloud-two-renamed' }), project: null, result: 'OK' }],
  ['hypervisorsConfigure', { as: 'admin', input: () => ({ hypervisorIds: [missing('Hypervisor')], sshUser: 'root', sshPassword: SECRET }), project: null, result: 'NOT_FOUND' }],
  ['inventorySync', { as: 'admin', input: () => ({ cloudId: missing('Cloud') }), project: null, result: 'NOT_FOUND' }],
  ['nodeConfigurationCreate', { as: 'admin', input: () => ({ name: 'audited-node-configuration' }), project: null, result: 'OK' }],
  ['nodeConfigurationDelete', { as: 'admin', input: () => ({ id: missing('NodeConfiguration') }), project: null, result: 'NOT_FOUND' }],
  ['nodeConfigurationUpdate', { as: 'admin', input: () => ({ id: missing('NodeConfiguration') }), project: null, result: 'NOT_FOUND' }],
  ['policyAssign', { as: 'admin', input: (s) => ({ policyId: ids(s).alpha.Policy, instanceIds: [ids(s).alpha.Instance] }), project: 'alpha', result: 'OK' }],
  ['policyCreate', { as: 'admin', input: () => ({ name: '' }), project: null, result: 'INVALID' }],
  ['policyDelete', { as: 'admin', input: () => ({ id: missing('Policy') }), project: null, result: 'NOT_FOUND' }],
  ['policyUpdate', { as: 'admin', input: (s) => ({ id: ids(s).alpha.Policy, name: 'alpha-policy-renamed' }), project: null, result: 'OK' }],
  ['priceCardCreate', { as: 'admin', input: () => ({ name: 'audited-card', frontEndPerTbMonth: 'lots', storedPerGbMonth: '1' }), project: null, result: 'INVALID_PRICE' }],
  ['pruneNow', { as: 'admin', input: () => ({ policyId: missing('Policy') }), project: null, result: 'NOT_FOUND' }],
  ['quotaAssign', { as: 'admin', input: (s) => ({ quotaId: ids(s).alpha.Quota, projectIds: [ids(s).alpha.Project] }), project: 'alpha', result: 'OK' }],
  ['quotaCreate', { as: 'alpha', input: () => ({ name: 'q', action: 'BACKUP', scope: 'PROJECT', measure: 'COUNT', windowSeconds: 60 }), project: null, result: 'FORBIDDEN' }],
  ['quotaDelete', { as: 'admin', input: () => ({ id: missing('Quota') }), project: null, result: 'NOT_FOUND' }],
  ['quotaUpdate', { as: 'admin', input: () => ({ id: missing('Quota') }), project: null, result: 'NOT_FOUND' }],
  ['serviceAccountCreate', { as: 'admin', input: (s) => ({ name: 'audited-portal', role: 'TENANT', projectIds: [ids(s).alpha.Project] }), project: 'alpha', result: 'OK' }],
  ['serviceAccountRotateSecret', { as: 'admin', input: () => ({ id: missing('ServiceAccount') }), project: null, result: 'NOT_FOUND' }],
  ['serviceAccountUpdate', { as: 'admin', input: () => ({ id: missing('ServiceAccount') }), project: null, result: 'NOT_FOUND' }],
  ['startBackup', { as: 'alpha', input: (s) => ({ instanceId: ids(s).alpha.Instance }), project: 'alpha', result: 'OK' }],
  // Another tenant's instance: refused as not found, and the event names no project (nothing leaks to bravo's trail).
  ['startBackup', { as: 'alpha', input: (s) => ({ instanceId: ids(s).bravo.Instance }), project: null, result: 'NOT_FOUND' }],
  ['startRestore', { as: 'alpha', input: (s) => ({ backupId: ids(s).alpha.Backup }), project: 'alpha', result: 'OK' }],
  ['storageProviderCreate', { as: 'admin', input: () => ({ name: 'audited-ceph', cephUser: 'backup', keyring: SECRET, cephConf: '[global]' }), project: null, result: 'OK' }],
  ['storageProviderDelete', { as: 'admin', input: () => ({ id: missing('StorageProvider') }), project: null, result: 'NOT_FOUND' }],
  ['storageProviderUpdate', { as: 'admin', input: () => ({ id: missing('StorageProvider') }), project: null, result: 'NOT_FOUND' }],
  ['verifyDestination', { as: 'admin', input: () => ({ destinationId: missing('BackupDestination') }), project: null, result: 'NOT_FOUND' }],
  ['volumeTypeUpdate', { as: 'admin', input: () => ({ id: missing('VolumeType') }), project: null, result: 'NOT_FOUND' }],
];

function mutationFields(s: GraphQLSchema) {
  return Object.values(s.getMutationType()!.getFields());
}

describe('audit trail', () => {
  let t: TestApp;
  let seed: Seed;
  const tokens: Partial<Record<Caller, string | null>> = { anonymous: null };
  const events = () => systemFork(t.services.orm).find(AuditEvent, {}, { orderBy: { id: 'asc' } });
  /** The caller's service account. */
  const account = async (c: 'admin' | 'alpha') => {
    const { name } = (await t.gql(tokens[c]!, '{ viewer { name } }')).data.viewer;
    return systemFork(t.services.orm).findOneOrFail(ServiceAccount, { name });
  };

  beforeAll(async () => {
    t = await startTestApp();
    seed = await seedTenants(systemFork(t.services.orm), t.services.secrets);
    tokens.admin = await t.login('ADMIN');
    tokens.alpha = await t.login('TENANT', [seed.alpha.project.id]);
  });
  afterAll(async () => {
    await t?.close();
  });

  it('has a case for every Mutation field', () => {
    const covered = new Set(cases.map(([field]) => field));
    expect(mutationFields(schema).map((f) => f.name).filter((f) => !covered.has(f))).toEqual([]);
  });

  it('records each mutation once: actor, action, project, targets and result, without input secrets', async () => {
    const viewers = Object.fromEntries(await Promise.all((['admin', 'alpha'] as const).map(async (c) => [c, await account(c)])));
    const inputTypes = Object.fromEntries(mutationFields(schema).map((f) => [f.name, String(f.args.find((a) => a.name === 'input')!.type)]));
    const seen: string[] = [];
    for (const [field, c] of cases) {
      const before = (await events()).length;
      // Only __typename is asked for: the plugin sees userErrors the caller did not select.
      const res = await t.gql(tokens[c.as]!, `mutation($input: ${inputTypes[field]}) { ${field}(input: $input) { __typename } }`, { input: c.input(seed) });
      const after = await events();
      const label = `${field} as ${c.as}: ${JSON.stringify(res)}`;
      expect(after.length, label).toBe(before + 1);
      const e = after.at(-1)!;
      expect({ action: e.action, result: e.result, project: e.projectId ?? null }, label).toEqual({
        action: field,
        result: c.result,
        project: c.project ? seed[c.project].project.id : null,
      });
      if (c.as === 'anonymous') expect([e.actorId ?? null, e.actorName, e.actorRole ?? null]).toEqual([null, 'anonymous', null]);
      else expect([e.actorId, e.actorName, e.actorRole]).toEqual([viewers[c.as]!.id, viewers[c.as]!.name, viewers[c.as]!.role]);
      if (c.result !== 'OK') expect(e.message, label).toBeTruthy();
      seen.push(JSON.stringify(e));
    }
    const all = seen.join('\n');
    expect(all).not.toContain(SECRET);
    // The created account's secret never reaches the trail either, though the payload carried it.
    const created = (await events()).find((e) => e.action === 'serviceAccountCreate')!;
    expect(created.targetIds).toEqual(expect.arrayContaining([ids(seed).alpha.Project]));
    expect(created.targetIds.some((id) => id.startsWith(Buffer.from('ServiceAccount:').toString('base64').slice(0, 16)))).toBe(true);
  });

  it('names the request a mutation came from (its X-Request-Id, as in the logs)', async () => {
    const requestId = `portal-${randomUUID()}`;
    const res = await t.fetch('/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${tokens.admin}`, 'x-request-id': requestId },
      body: JSON.stringify({ query: 'mutation($input: NodeConfigurationCreateInput!) { nodeConfigurationCreate(input: $input) { __typename } }', variables: { input: { name: 'audited-request-id' } } }),
    });
    expect(res.headers.get('x-request-id')).toBe(requestId);
    const e = (await events()).at(-1)!;
    expect([e.action, e.requestId]).toEqual(['nodeConfigurationCreate', requestId]);
  });

  it("records each task's final outcome as the system", async () => {
    const em = systemFork(t.services.orm);
    const mover = em.create(DataMover, { name: 'audit-mover', host: 'localhost' });
    const ok = em.create(Task, { type: 'INVENTORY_SYNC', cloud: seed.clouds[0]!, project: seed.alpha.project });
    const bad = em.create(Task, { type: 'INVENTORY_SYNC', cloud: seed.clouds[0]!, project: seed.alpha.project });
    await em.flush();
    const publisher = { publish: async () => {} };
    const executors = { INVENTORY_SYNC: async (ctx: { task: Task }) => { if (ctx.task.id === bad.id) throw new Error('keystone said no'); } };
    expect((await runTask(t.services.orm, executors, publisher, ok.id, 1, 1, mover.id)).outcome).toBe('SUCCEEDED');
    expect((await runTask(t.services.orm, executors, publisher, bad.id, 1, 1, mover.id)).outcome).toBe('FAILED');
    const outcomes = (await events()).filter((e) => e.action.startsWith('task.INVENTORY_SYNC.'));
    expect(outcomes.map((e) => [e.action, e.result, e.actorName, e.actorId ?? null, e.projectId, e.targetIds, e.message ?? null])).toEqual([
      ['task.INVENTORY_SYNC.SUCCEEDED', 'OK', 'system', null, seed.alpha.project.id, [gid('Task', ok.id)], null],
      ['task.INVENTORY_SYNC.FAILED', 'FAILED', 'system', null, seed.alpha.project.id, [gid('Task', bad.id)], 'keystone said no'],
    ]);
  });

  it('says so when the audit row cannot be written, and leaves the row on stderr', async () => {
    const conn = systemFork(t.services.orm).getConnection();
    await conn.execute(`create function audit_refuse() returns trigger language plpgsql as $$ begin raise exception 'audit disk full'; end $$`);
    await conn.execute(`create trigger audit_refuse before insert on audit_event for each row execute function audit_refuse()`);
    const written: string[] = [];
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => (written.push(String(chunk)), true));
    try {
      const res = await t.gql(tokens.admin!, 'mutation($i: NodeConfigurationCreateInput!) { nodeConfigurationCreate(input: $i) { nodeConfiguration { name } } }', { i: { name: 'unaudited' } });
      expect(res.data.nodeConfigurationCreate.nodeConfiguration.name).toBe('unaudited');
      expect(res.errors?.map((e) => e.extensions?.code)).toEqual(['AUDIT_WRITE_FAILED']);
    } finally {
      spy.mockRestore();
      await conn.execute('drop trigger audit_refuse on audit_event');
      await conn.execute('drop function audit_refuse');
    }
    const lines = written.filter((l) => l.startsWith('audit-unwritten '));
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!.slice('audit-unwritten '.length))).toMatchObject({ action: 'nodeConfigurationCreate', result: 'OK', actorRole: 'ADMIN' });
  });

  describe('auditEvents and the CSV export', () => {
    const query = `query($first: Int, $after: String, $filter: AuditEventFilter) {
      auditEvents(first: $first, after: $after, filter: $filter) {
        totalCount edges { node { id at actorName action projectId targetIds result message } } pageInfo { hasNextPage endCursor }
      }
    }`;

    it('shows a TENANT only the events of its projects, newest first', async () => {
      const bravo = await t.login('TENANT', [seed.bravo.project.id]);
      // Something happens in bravo's project too.
      expect((await t.gql(bravo, 'mutation($i: StartBackupInput!) { startBackup(input: $i) { userErrors { code } } }', { i: { instanceId: ids(seed).bravo.Instance } })).errors).toBeUndefined();

      // An ADMIN call that names alpha's instance and bravo's policy is alpha's event, but alpha must not learn bravo's policy.
      const mixed = await t.gql(tokens.admin!, 'mutation($i: PolicyAssignInput!) { policyAssign(input: $i) { userErrors { code } } }', { i: { policyId: ids(seed).bravo.Policy, instanceIds: [ids(seed).alpha.Instance] } });
      expect(mixed.errors).toBeUndefined();

      const admin = (await t.gql(tokens.admin!, query, { first: 100 })).data.auditEvents;
      expect(admin.edges[0].node).toMatchObject({ action: 'policyAssign', projectId: ids(seed).alpha.Project, targetIds: expect.arrayContaining([ids(seed).bravo.Policy]) });
      const projects = new Set(admin.edges.map((e: any) => e.node.projectId));
      expect(projects).toEqual(new Set([null, ids(seed).alpha.Project, ids(seed).bravo.Project]));
      const times = admin.edges.map((e: any) => e.node.at);
      expect(times).toEqual([...times].sort().reverse());

      const alpha = (await t.gql(tokens.alpha!, query, { first: 100 })).data.auditEvents;
      expect(alpha.totalCount).toBeGreaterThan(0);
      expect(alpha.totalCount).toBe(admin.edges.filter((e: any) => e.node.projectId === ids(seed).alpha.Project).length);
      for (const { node } of alpha.edges) expect(node.projectId).toBe(ids(seed).alpha.Project);
      const body = JSON.stringify(alpha);
      for (const foreign of [...Object.values(ids(seed).bravo), 'bravo']) expect(body).not.toContain(foreign);
      // Filtering by another project finds nothing rather than an error.
      expect((await t.gql(tokens.alpha!, query, { filter: { projectId: ids(seed).bravo.Project } })).data.auditEvents.totalCount).toBe(0);

      // OPERATOR and BILLING may not read the trail.
      for (const role of ['OPERATOR', 'BILLING'] as const) {
        expect((await t.gql(await t.login(role), query, {})).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
      }
    });

    it('pages and filters by action prefix, result, actor and time', async () => {
      const tasks = (await t.gql(tokens.admin!, query, { first: 1, filter: { actionPrefix: 'task.' } })).data.auditEvents;
      expect(tasks.totalCount).toBe(2);
      expect(tasks.edges[0].node.action).toBe('task.INVENTORY_SYNC.FAILED');
      const next = (await t.gql(tokens.admin!, query, { first: 1, after: tasks.pageInfo.endCursor, filter: { actionPrefix: 'task.' } })).data.auditEvents;
      expect(next.edges[0].node.action).toBe('task.INVENTORY_SYNC.SUCCEEDED');
      expect(next.pageInfo.hasNextPage).toBe(false);

      const forbidden = (await t.gql(tokens.admin!, query, { filter: { result: 'FORBIDDEN' } })).data.auditEvents;
      expect(forbidden.edges.map((e: any) => e.node.action).sort()).toEqual(['cloudCreate', 'quotaCreate']);
      const anonymous = (await t.gql(tokens.admin!, query, { filter: { actionPrefix: 'cloud', result: 'UNAUTHENTICATED' } })).data.auditEvents;
      expect(anonymous.edges.map((e: any) => e.node.actorName)).toEqual(['anonymous']);
      const future = (await t.gql(tokens.admin!, query, { filter: { from: new Date(Date.now() + 3_600_000).toISOString() } })).data.auditEvents;
      expect(future.totalCount).toBe(0);
      const alpha = await account('alpha');
      const mine = (await t.gql(tokens.admin!, query, { first: 100, filter: { actorId: gid('ServiceAccount', alpha.id) } })).data.auditEvents;
      expect(mine.totalCount).toBe(cases.filter(([, c]) => c.as === 'alpha').length);
    });

    it('exports CSV with the same scope', async () => {
      const csv = async (token: string | null, qs = '') => t.fetch(`/audit/events.csv${qs}`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
      const all = await csv(tokens.admin!);
      expect(all.status).toBe(200);
      expect(all.headers.get('content-type')).toMatch(/text\/csv/);
      const lines = (await all.text()).trim().split('\n');
      expect(lines[0]).toBe('id,at,actor_id,actor_name,actor_role,action,project_id,target_ids,result,message,request_id');
      const total = (await t.gql(tokens.admin!, query, {})).data.auditEvents.totalCount;
      expect(lines.length - 1).toBe(total);

      const mine = (await (await csv(tokens.alpha!)).text()).trim().split('\n').slice(1);
      expect(mine.length).toBeGreaterThan(0);
      for (const line of mine) expect(line).toContain(ids(seed).alpha.Project);
      for (const line of mine) expect(line).not.toContain(ids(seed).bravo.Project);

      const tasks = (await (await csv(tokens.admin!, '?actionPrefix=task.')).text()).trim().split('\n');
      expect(tasks.length).toBe(3);
      expect((await csv(null)).status).toBe(401);
      expect((await csv(await t.login('BILLING'))).status).toBe(403);
      expect((await csv(tokens.admin!, '?from=yesterday')).status).toBe(400);
    });
  });
});
