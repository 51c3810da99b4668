// Trigger mutations end to end on a real database: startBackup, startRestore, cancelTask,
// inventorySync; scope, visibility, idempotency (also under concurrency), audit and events.
import { decodeGlobalID } from '@pothos/plugin-relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditEntry, Backup, BackupDisk, Restore, Task, type BackupDestination, type Cloud, type Instance, type Project } from '../../src/db/entities/index.ts';
import { systemFork } from '../../src/db/orm.ts';
import { Channels, type TaskEvent } from '../../src/events/channels.ts';
import { notify } from '../../src/events/pubsub.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { gid, seeder } from '../helpers/seed.ts';
import { op } from '../helpers/ops.ts';
import * as G from '../generated/graphql.ts';

const START_BACKUP = `mutation($input: StartBackupInput!) {
  startBackup(input: $input) {
    task { id type state progress bytesDone instance { id name } project { id } destination { id } policy { id } }
    userErrors { code field message }
  }
}`;
const START_RESTORE = `mutation($input: StartRestoreInput!) {
  startRestore(input: $input) {
    task { id type state project { id } backup { id } restore { name state mappings verify project { id } } }
    userErrors { code field message }
  }
}`;
const CANCEL = `mutation($id: ID!) { cancelTask(input: {taskId: $id}) { task { id state cancelRequested finishedAt } userErrors { code field message } } }`;

async function nextWithin<T>(it: AsyncIterator<T>, ms = 5000): Promise<T> {
  const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no event within ${ms} ms`)), ms));
  const r = await Promise.race([it.next(), timeout]);
  if (r.done) throw new Error('iterator ended');
  return r.value;
}

describe('task trigger mutations', () => {
  let t: TestApp;
  let cloud: Cloud;
  let projectA: Project;
  let projectB: Project;
  let vmA: Instance;
  let vmB: Instance;
  let dest: BackupDestination;
  let operator: string;
  let tenantA: string;
  let backupA: Backup;
  const taskCount = () => systemFork(t.services.orm).count(Task, {});

  beforeAll(async () => {
    t = await startTestApp();
    const s = seeder(t.services.orm);
    cloud = await s.cloud();
    projectA = await s.project(cloud, 'project-a');
    projectB = await s.project(cloud, 'project-b');
    dest = await s.destination({ name: 'default-dest' });
    dest.isDefault = true;
    await s.save(dest);
    [vmA] = await s.instances(projectA, 1, { name: 'vm-a' });
    [vmB] = await s.instances(projectB, 1, { name: 'vm-b' });
    const em = systemFork(t.services.orm);
    backupA = em.create(Backup, { cloud: cloud.id, project: projectA.id, instance: vmA!.id, destination: dest.id, state: 'AVAILABLE', frontEndBytes: 1n << 30n, readBytes: 1000n, durationSeconds: 10 });
    em.create(BackupDisk, { backup: backupA, project: projectA.id, position: 0, name: 'root', kind: 'NOVA', sizeBytes: 1n << 30n });
    await em.flush();
    operator = await t.login('OPERATOR');
    tenantA = await t.login('TENANT', [projectA.id]);
  });
  afterAll(() => t?.close());

  it('startBackup creates a QUEUED task with its job on the durable queue, listed in tasks, audited, announced on commit', async () => {
    const events = await t.services.pubsub.subscribe<TaskEvent>(Channels.task);
    const res = await t.gql(operator, START_BACKUP, { input: { instanceId: gid('Instance', vmA.id), type: 'FULL' } });
    expect(res.errors).toBeUndefined();
    const payload = res.data.startBackup;
    expect(payload.userErrors).toEqual([]);
    expect(payload.task).toMatchObject({ type: 'BACKUP', state: 'QUEUED', progress: 0, bytesDone: 0, instance: { name: 'vm-a' }, project: { id: gid('Project', projectA.id) }, destination: { id: gid('BackupDestination', dest.id) }, policy: null });

    const list = await t.gql(operator, `{ tasks(last: 5, filter: {states: [QUEUED], types: [BACKUP]}) { edges { node { id } } totalCount } }`);
    expect(list.data.tasks.edges.map((e: any) => e.node.id)).toContain(payload.task.id);

    const [job] = await systemFork(t.services.orm).execute(`select t.identifier as task_identifier, j.payload->>'taskId' as task_id from graphile_worker._private_jobs j join graphile_worker._private_tasks t on t.id = j.task_id where j.key = ?`, [decodeGlobalID(payload.task.id).id]);
    expect(job).toMatchObject({ task_identifier: 'backup' });
    const taskId = job.task_id;
    expect(gid('Task', taskId)).toBe(payload.task.id);
    const event = await nextWithin(events);
    expect(event).toMatchObject({ kind: 'CREATED', taskId, projectId: projectA.id, state: 'QUEUED' });
    await events.return!();

    const audit = await systemFork(t.services.orm).find(AuditEntry, { objectId: taskId });
    expect(audit.map((a) => a.action)).toEqual(['task.backup.start']);
    const row = await systemFork(t.services.orm).findOneOrFail(Task, taskId);
    // `type` as the scheduler writes it too: the executor reads one key.
    expect(row.params).toEqual({ type: 'FULL', quotaBytes: String(1 << 30) });
  });

  it('publishes events from a transaction only when it commits', async () => {
    const events = await t.services.pubsub.subscribe<{ n: number }>('sb_test_tx');
    await expect(
      systemFork(t.services.orm).transactional(async (em) => {
        await notify(em, 'sb_test_tx', { n: 1 });
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
    await systemFork(t.services.orm).transactional((em) => notify(em, 'sb_test_tx', { n: 2 }));
    expect(await nextWithin(events)).toEqual({ n: 2 });
    await events.return!();
  });

  it('lets a tenant back up its own instance but not another project’s (no row created)', async () => {
    const ok = await t.gql(tenantA, START_BACKUP, { input: { instanceId: gid('Instance', vmA.id) } });
    expect(ok.data.startBackup.userErrors).toEqual([]);
    expect(ok.data.startBackup.task.state).toBe('QUEUED');

    const before = await taskCount();
    const refused = await t.gql(tenantA, START_BACKUP, { input: { instanceId: gid('Instance', vmB.id) } });
    expect(refused.errors).toBeUndefined();
    expect(refused.data.startBackup).toEqual({ task: null, userErrors: [{ code: 'NOT_FOUND', field: ['input', 'instanceId'], message: expect.any(String) }] });
    const wrongType = await t.gql(tenantA, START_BACKUP, { input: { instanceId: gid('Project', projectA.id) } });
    expect(wrongType.data.startBackup.userErrors[0].code).toBe('NOT_FOUND');
    const garbage = await t.gql(tenantA, START_BACKUP, { input: { instanceId: 'not-an-id' } });
    expect(garbage.data.startBackup.userErrors[0].code).toBe('NOT_FOUND');
    expect(await taskCount()).toBe(before);

    // And the tenant's list holds only its own project's tasks.
    const list = await t.gql(tenantA, `{ tasks(first: 100) { edges { node { project { id } } } } }`);
    const projects = new Set(list.data.tasks.edges.map((e: any) => e.node.project.id));
    expect([...projects]).toEqual([gid('Project', projectA.id)]);
  });

  it('refuses a policy or destination not visible to the instance’s project', async () => {
    const s = seeder(t.services.orm);
    const onlyB = await s.policy({ visibility: 'CHOSEN_PROJECTS', projects: [projectB] });
    const before = await taskCount();
    const res = await t.gql(operator, START_BACKUP, { input: { instanceId: gid('Instance', vmA.id), policyId: gid('Policy', onlyB.id) } });
    expect(res.data.startBackup.userErrors.map((e: any) => e.code)).toEqual(['POLICY_NOT_AVAILABLE']);

    const hiddenDest = await s.destination({ visibility: 'CHOSEN_PROJECTS', projects: [projectB] });
    const pol = await s.policy();
    pol.destination = hiddenDest;
    await s.save(pol);
    const res2 = await t.gql(operator, START_BACKUP, { input: { instanceId: gid('Instance', vmA.id), policyId: gid('Policy', pol.id) } });
    expect(res2.data.startBackup.userErrors.map((e: any) => e.code)).toEqual(['DESTINATION_NOT_AVAILABLE']);
    expect(await taskCount()).toBe(before);

    const visible = await s.policy({ visibility: 'CHOSEN_PROJECTS', projects: [projectA] });
    const ok = await t.gql(tenantA, START_BACKUP, { input: { instanceId: gid('Instance', vmA.id), policyId: gid('Policy', visible.id) } });
    expect(ok.data.startBackup.userErrors).toEqual([]);
    expect(ok.data.startBackup.task.policy.id).toBe(gid('Policy', visible.id));
  });

  it('answers a repeated idempotency key with the first task and starts nothing new', async () => {
    const input = { instanceId: gid('Instance', vmA.id), type: 'INCREMENTAL', idempotencyKey: 'nightly-2026-11-27' };
    const first = await t.gql(tenantA, START_BACKUP, { input });
    const before = await taskCount();
    const second = await t.gql(tenantA, START_BACKUP, { input });
    expect(second.data.startBackup.task.id).toBe(first.data.startBackup.task.id);
    expect(await taskCount()).toBe(before);

    // Same key, another request → refused, nothing started.
    const reused = await t.gql(tenantA, START_BACKUP, { input: { ...input, type: 'FULL' } });
    expect(reused.data.startBackup).toEqual({ task: null, userErrors: [{ code: 'IDEMPOTENCY_KEY_REUSED', field: ['input', 'idempotencyKey'], message: expect.any(String) }] });
    expect(await taskCount()).toBe(before);

    // Keys are per account: the operator's same key starts its own task.
    const other = await t.gql(operator, START_BACKUP, { input });
    expect(other.data.startBackup.task.id).not.toBe(first.data.startBackup.task.id);
  });

  it('starts ONE task for 10 concurrent calls with one key', async () => {
    const before = await taskCount();
    const input = { instanceId: gid('Instance', vmA.id), type: 'FULL', idempotencyKey: 'burst-1' };
    const results = await Promise.all(Array.from({ length: 10 }, () => t.gql(operator, START_BACKUP, { input })));
    for (const r of results) {
      expect(r.errors).toBeUndefined();
      expect(r.data.startBackup.userErrors).toEqual([]);
    }
    const ids = new Set(results.map((r) => r.data.startBackup.task.id));
    expect(ids.size).toBe(1);
    expect(await taskCount()).toBe(before + 1);
  });

  it('cancels a queued task at once (with an event) and refuses to cancel it again', async () => {
    const started = await t.gql(tenantA, START_BACKUP, { input: { instanceId: gid('Instance', vmA.id) } });
    const id = started.data.startBackup.task.id;
    const events = await t.services.pubsub.subscribe<TaskEvent>(Channels.task, { filter: (e) => e.kind === 'STATE' });
    const res = await t.gql(tenantA, CANCEL, { id });
    expect(res.data.cancelTask.userErrors).toEqual([]);
    expect(res.data.cancelTask.task).toMatchObject({ id, state: 'CANCELLED', cancelRequested: true });
    expect(res.data.cancelTask.task.finishedAt).toBeTruthy();
    const event = await nextWithin(events);
    expect(gid('Task', event.taskId)).toBe(id);
    expect(event.state).toBe('CANCELLED');
    await events.return!();

    const [{ n }] = await systemFork(t.services.orm).execute(`select count(*)::int as n from graphile_worker._private_jobs where key = ?`, [decodeGlobalID(id).id]);
    expect(n).toBe(0); // its job left the queue with it

    const again = await t.gql(tenantA, CANCEL, { id });
    expect(again.data.cancelTask.userErrors.map((e: any) => e.code)).toEqual(['TASK_FINISHED']);
  });

  it('asks a running task to stop rather than marking it cancelled', async () => {
    const started = await t.gql(operator, START_BACKUP, { input: { instanceId: gid('Instance', vmB.id) } });
    const id = started.data.startBackup.task.id;
    // A data mover picked it up.
    await systemFork(t.services.orm).nativeUpdate(Task, { id: decodeGlobalID(id).id }, { state: 'RUNNING' });
    const res = await t.gql(operator, CANCEL, { id });
    expect(res.data.cancelTask.task).toMatchObject({ state: 'RUNNING', cancelRequested: true, finishedAt: null });
  });

  it('does not let a tenant cancel another project’s task', async () => {
    const started = await t.gql(operator, START_BACKUP, { input: { instanceId: gid('Instance', vmB.id) } });
    const res = await t.gql(tenantA, CANCEL, { id: started.data.startBackup.task.id });
    expect(res.data.cancelTask.userErrors.map((e: any) => e.code)).toEqual(['NOT_FOUND']);
    const row = await systemFork(t.services.orm).findOneOrFail(Task, decodeGlobalID(started.data.startBackup.task.id).id);
    expect(row.cancelRequested).toBe(false);
  });

  it('startRestore: a tenant restores its backup into its project, with mappings; not into another’s', async () => {
    const input = {
      backupId: gid('Backup', backupA.id),
      name: 'vm-a-restored',
      mappings: { networks: [{ from: 'net-1', to: 'net-2' }], flavorId: 'flv-9', securityGroups: ['default'] },
      idempotencyKey: 'restore-1',
    };
    const ok = await t.gql(tenantA, START_RESTORE, { input });
    expect(ok.data.startRestore.userErrors).toEqual([]);
    expect(ok.data.startRestore.task).toMatchObject({
      type: 'RESTORE', state: 'QUEUED', project: { id: gid('Project', projectA.id) }, backup: { id: gid('Backup', backupA.id) },
      restore: { name: 'vm-a-restored', state: 'QUEUED', verify: false, project: { id: gid('Project', projectA.id) }, mappings: { networks: [{ from: 'net-1', to: 'net-2' }], flavorId: 'flv-9', securityGroups: ['default'] } },
    });
    const restores = await systemFork(t.services.orm).count(Restore, {});
    expect(restores).toBe(1);

    const before = await taskCount();
    const foreign = await t.gql(tenantA, START_RESTORE, { input: { backupId: gid('Backup', backupA.id), projectId: gid('Project', projectB.id) } });
    expect(foreign.data.startRestore.userErrors.map((e: any) => e.code)).toEqual(['NOT_FOUND']);
    const badDisk = await t.gql(tenantA, START_RESTORE, { input: { backupId: gid('Backup', backupA.id), diskPosition: 7 } });
    expect(badDisk.data.startRestore.userErrors.map((e: any) => e.code)).toEqual(['DISK_NOT_FOUND']);
    const longName = await t.gql(tenantA, START_RESTORE, { input: { backupId: gid('Backup', backupA.id), name: 'x'.repeat(300) } });
    expect(longName.data.startRestore.userErrors.map((e: any) => e.code)).toEqual(['INVALID']);
    expect(await taskCount()).toBe(before);
    expect(await systemFork(t.services.orm).count(Restore, {})).toBe(1);

    // An operator may restore it into another project of the same cloud, one disk only.
    const op = await t.gql(operator, START_RESTORE, { input: { backupId: gid('Backup', backupA.id), projectId: gid('Project', projectB.id), diskPosition: 0, verify: true } });
    expect(op.data.startRestore.userErrors).toEqual([]);
    expect(op.data.startRestore.task.restore).toMatchObject({ name: 'vm-a-restore', mappings: { diskPosition: 0 }, verify: true, project: { id: gid('Project', projectB.id) } });
  });

  it('inventorySync is for ADMIN/OPERATOR; BILLING triggers nothing', async () => {
    const ok = await t.gql(operator, `mutation($c: ID!) { inventorySync(input: {cloudId: $c}) { task { type state project { id } } userErrors { code } } }`, { c: gid('Cloud', cloud.id) });
    expect(ok.data.inventorySync).toEqual({ task: { type: 'INVENTORY_SYNC', state: 'QUEUED', project: null }, userErrors: [] });
    const tenant = await t.gql(tenantA, `mutation($c: ID!) { inventorySync(input: {cloudId: $c}) { task { id } } }`, { c: gid('Cloud', cloud.id) });
    expect(tenant.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const billing = await t.login('BILLING');
    const before = await taskCount();
    const res = await t.gql(billing, START_BACKUP, { input: { instanceId: gid('Instance', vmA.id) } });
    expect(res.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(await taskCount()).toBe(before);
    // The tenant does not see the inventory sync (a task of no project).
    const list = await t.gql(tenantA, `{ tasks(first: 100, filter: {types: [INVENTORY_SYNC]}) { totalCount } }`);
    expect(list.data.tasks.totalCount).toBe(0);
  });

  it("runs the portal's typed operations (schema/operations/tasks.graphql)", async () => {
    const started = await op(t, tenantA, G.StartBackupDocument, { input: { instanceId: gid('Instance', vmA.id), type: 'AUTO', idempotencyKey: 'portal-1' } });
    expect(started.errors).toBeUndefined();
    const task = started.data!.startBackup.task!;
    expect(task).toMatchObject({ type: 'BACKUP', state: 'QUEUED', progress: 0, instance: { name: 'vm-a' } });
    const newest = await op(t, tenantA, G.ListTasksDocument, { last: 1 });
    expect(newest.data!.tasks.edges.map((e) => e.node.id)).toEqual([task.id]);
    const cancelled = await op(t, tenantA, G.CancelTaskDocument, { input: { taskId: task.id } });
    expect(cancelled.data!.cancelTask.task).toMatchObject({ state: 'CANCELLED', cancelRequested: true });
    const backups = await op(t, tenantA, G.ListBackupsDocument, { first: 10, filter: { instanceId: gid('Instance', vmA.id), states: ['AVAILABLE'] } });
    expect(backups.data!.backups.totalCount).toBe(1);
  });

  it('lists backups with figures and disks, and Instance.lastBackup', async () => {
    const res = await t.gql(tenantA, `{ backups(first: 10) { edges { node { id type state duration rate frontEndBytes readBytes disks { position name sizeBytes } instance { name lastBackup { id } } } } } }`);
    expect(res.errors).toBeUndefined();
    expect(res.data.backups.edges).toHaveLength(1);
    expect(res.data.backups.edges[0].node).toMatchObject({
      id: gid('Backup', backupA.id), type: 'FULL', state: 'AVAILABLE', duration: 10, rate: 100, frontEndBytes: 1073741824, readBytes: 1000,
      disks: [{ position: 0, name: 'root', sizeBytes: 1073741824 }], instance: { name: 'vm-a', lastBackup: { id: gid('Backup', backupA.id) } },
    });
    const tenantB = await t.login('TENANT', [projectB.id]);
    const none = await t.gql(tenantB, `{ backups(first: 10) { totalCount } node(id: "${gid('Backup', backupA.id)}") { id } }`);
    expect(none.data).toEqual({ backups: { totalCount: 0 }, node: null });
  });
});
