// Maintenance triggers over GraphQL: pruneNow, backupDelete, verifyDestination — who may call
// them (src/auth/policy.ts), what they refuse, and the PRUNE/VERIFY tasks they queue.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Backup, Policy, Task, type BackupDestination, type Project } from '../../src/db/entities/index.ts';
import { systemFork } from '../../src/db/orm.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { gid, seeder } from '../helpers/seed.ts';

const PRUNE_NOW = `mutation($input: PruneNowInput!) { pruneNow(input: $input) { task { id type state policy { id } result } userErrors { code field message } } }`;
const DELETE = `mutation($input: BackupDeleteInput!) { backupDelete(input: $input) { task { id type state backup { id } project { id } } userErrors { code field message } } }`;
const VERIFY = `mutation($input: VerifyDestinationInput!) { verifyDestination(input: $input) { task { id type destination { id } } userErrors { code field message } } }`;

describe('maintenance mutations', () => {
  let t: TestApp;
  let projectA: Project;
  let dest: BackupDestination;
  let policy: Policy;
  let forever: Policy;
  let backupA: Backup;
  let backupB: Backup;
  let operator: string;
  let tenantA: string;
  const tasks = () => systemFork(t.services.orm).count(Task, { type: { $in: ['PRUNE', 'VERIFY'] } });

  beforeAll(async () => {
    t = await startTestApp();
    const s = seeder(t.services.orm);
    const cloud = await s.cloud();
    projectA = await s.project(cloud);
    const projectB = await s.project(cloud);
    dest = await s.destination();
    policy = await s.policy({ destination: dest });
    policy.retention = { keepLastFull: 2 };
    await s.save(policy);
    forever = await s.policy();
    const [vmA] = await s.instances(projectA, 1);
    const [vmB] = await s.instances(projectB, 1);
    const em = systemFork(t.services.orm);
    const row = (vm: typeof vmA) => em.create(Backup, { cloud: cloud.id, project: vm!.project.id, instance: vm!.id, destination: dest.id, state: 'AVAILABLE', completedAt: new Date() });
    backupA = row(vmA);
    backupB = row(vmB);
    await em.flush();
    operator = await t.login('OPERATOR');
    tenantA = await t.login('TENANT', [projectA.id]);
  });
  afterAll(() => t?.close());

  it('pruneNow queues a PRUNE task of the policy for an operator; refuses a policy without retention and a tenant', async () => {
    const res = await t.gql(operator, PRUNE_NOW, { input: { policyId: gid('Policy', policy.id) } });
    expect(res.data.pruneNow).toMatchObject({ userErrors: [], task: { type: 'PRUNE', state: 'QUEUED', policy: { id: gid('Policy', policy.id) }, result: null } });

    const before = await tasks();
    const none = await t.gql(operator, PRUNE_NOW, { input: { policyId: gid('Policy', forever.id) } });
    expect(none.data.pruneNow.userErrors).toEqual([expect.objectContaining({ code: 'NO_RETENTION', field: ['input', 'policyId'] })]);
    const denied = await t.gql(tenantA, PRUNE_NOW, { input: { policyId: gid('Policy', policy.id) } });
    expect(denied.data?.pruneNow ?? null).toBeNull();
    expect(denied.errors?.[0]?.extensions?.code).toBeDefined();
    expect(await tasks()).toBe(before);
  });

  it("backupDelete: a tenant deletes its own backup (a PRUNE of that backup), not another project's, not a deleted one", async () => {
    const res = await t.gql(tenantA, DELETE, { input: { backupId: gid('Backup', backupA.id) } });
    expect(res.data.backupDelete).toMatchObject({ userErrors: [], task: { type: 'PRUNE', state: 'QUEUED', backup: { id: gid('Backup', backupA.id) }, project: { id: gid('Project', projectA.id) } } });
    const row = await systemFork(t.services.orm).findOneOrFail(Task, { backup: backupA.id, type: 'PRUNE' });
    expect(row.params).toEqual({ backupIds: [backupA.id] });

    const before = await tasks();
    const foreign = await t.gql(tenantA, DELETE, { input: { backupId: gid('Backup', backupB.id) } });
    expect(foreign.data.backupDelete.userErrors).toEqual([expect.objectContaining({ code: 'NOT_FOUND' })]);
    await systemFork(t.services.orm).nativeUpdate(Backup, { id: backupB.id }, { state: 'DELETED', deletedAt: new Date() });
    const gone = await t.gql(operator, DELETE, { input: { backupId: gid('Backup', backupB.id) } });
    expect(gone.data.backupDelete.userErrors).toEqual([expect.objectContaining({ code: 'BACKUP_NOT_AVAILABLE' })]);
    expect(await tasks()).toBe(before);
  });

  it('verifyDestination queues a one-attempt VERIFY task for an operator, not for a tenant', async () => {
    const res = await t.gql(operator, VERIFY, { input: { destinationId: gid('BackupDestination', dest.id), readData: true } });
    expect(res.data.verifyDestination).toMatchObject({ userErrors: [], task: { type: 'VERIFY', destination: { id: gid('BackupDestination', dest.id) } } });
    const row = await systemFork(t.services.orm).findOneOrFail(Task, { type: 'VERIFY', destination: dest.id });
    expect([row.maxAttempts, row.params]).toEqual([1, { readData: true }]);
    const denied = await t.gql(tenantA, VERIFY, { input: { destinationId: gid('BackupDestination', dest.id) } });
    expect(denied.data?.verifyDestination ?? null).toBeNull();
  });
});
