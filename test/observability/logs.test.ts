// Logs of a realistic flow, as written (the suite's log file, debug level): a service account and
// its token, a cloud with a password, destinations with credentials, an inventory sync and a
// backup through the API run by a real data mover against the simulator. No secret appears, and
// the request ID the caller sent is on the API line, the task's lines and its OpenStack calls.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Instance } from '../../src/db/entities/index.ts';
import { systemFork } from '../../src/db/orm.ts';
import { startDataMover, type RunningDataMover } from '../../src/engine/data-mover.ts';
import { backupExecutor } from '../../src/engine/backup/backup-executor.ts';
import { inventorySyncExecutor } from '../../src/engine/inventory/executor.ts';
import { acceptRequestId, openStackGlobalRequestId } from '../../src/observability/request-context.ts';
import * as G from '../generated/graphql.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { op } from '../helpers/ops.ts';
import { gid } from '../helpers/seed.ts';
import { FIXED_TEST_SECRETS, leakedSecrets, registerTestSecrets } from '../helpers/secret-registry.ts';
import { startSimulator, type TestSim } from '../helpers/simulator.ts';
import { taskEnded } from '../helpers/task-ended.ts';

const SECRETS = { s3Secret: `s3-secret-${randomUUID()}`, swiftPassword: `swift-pw-${randomUUID()}` };
registerTestSecrets(...Object.values(SECRETS));

type Line = Record<string, any>;
const logFile = process.env.STRONGBOX_LOG_FILE!;
const lines = (): Line[] => readFileSync(logFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));

let t: TestApp;
let sim: TestSim;
let mover: RunningDataMover;
let admin: string;
let repoDir: string;
let cloudId: string;
let destinationId: string;

/** A GraphQL call with our own X-Request-Id; returns the body and the ID the response echoed. */
async function call(requestId: string, query: unknown, variables: Record<string, unknown>) {
  const { print } = await import('graphql');
  const res = await t.fetch('/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}`, 'x-request-id': requestId },
    body: JSON.stringify({ query: print(query as never), variables }),
  });
  return { requestId, body: (await res.json()) as any, echoed: res.headers.get('x-request-id') };
}

beforeAll(async () => {
  t = await startTestApp();
  sim = await startSimulator();
  repoDir = mkdtempSync(path.join(os.tmpdir(), 'sb-logs-repo-'));
  admin = await t.login('ADMIN');
  const nc = (await op(t, admin, G.CreateNodeConfigurationDocument, { input: { name: 'sim-proxy', proxyServerId: sim.seed.proxyServerId, attachmentLimit: 4 } })).data!.nodeConfigurationCreate.nodeConfiguration!;
  const cloud = await op(t, admin, G.CreateCloudDocument, {
    input: {
      name: 'sim', keystoneUrl: sim.sim.keystoneUrl, region: 'RegionOne', endpointInterface: 'PUBLIC', nodeConfigurationId: nc.id,
      authDomains: [{ name: 'Default', domainId: 'default', username: sim.seed.admin.username, password: sim.seed.admin.password, defaultProject: 'admin' }],
    },
  });
  expect(cloud.data!.cloudCreate.userErrors).toEqual([]);
  cloudId = cloud.data!.cloudCreate.cloud!.id;
  const file = await op(t, admin, G.CreateDestinationDocument, { input: { name: 'local', kind: 'FILE_SYSTEM', url: `file://${repoDir}/repo`, chunkSizeBytes: 64 << 10, isDefault: true } });
  expect(file.data!.backupDestinationCreate.userErrors).toEqual([]);
  destinationId = file.data!.backupDestinationCreate.backupDestination!.id;
  for (const input of [
    { name: 's3', kind: 'S3' as const, url: 's3://bucket/p?endpoint=http://127.0.0.1:9', credentials: { accessKeyId: 'AKIAX', secretAccessKey: SECRETS.s3Secret } },
    { name: 'swift', kind: 'SWIFT' as const, url: 'swift://c/p?auth=http://127.0.0.1:9/v3', credentials: { username: 'sw', password: SECRETS.swiftPassword, projectName: 'svc' } },
  ]) {
    expect((await op(t, admin, G.CreateDestinationDocument, { input })).data!.backupDestinationCreate.userErrors).toEqual([]);
  }
  const { services } = t;
  mover = await startDataMover({
    orm: services.orm, databaseUrl: services.databaseUrl, publisher: services.pubsub, nodeConfiguration: 'sim-proxy', name: 'logs-mover',
    executors: {
      INVENTORY_SYNC: inventorySyncExecutor(services),
      BACKUP: backupExecutor({ secrets: services.secrets, usage: services.usage, wait: { intervalMs: 20, timeoutMs: 5000 } }),
    },
  });
});
afterAll(async () => {
  await mover?.stop();
  await t?.close();
  await sim?.close();
  if (repoDir) rmSync(repoDir, { recursive: true, force: true });
});

/** The lines of the work done under `requestId`, once its task (global ID) ended. */
async function traced(requestId: string, taskGid: string) {
  const taskId = Buffer.from(taskGid, 'base64').toString().split(':')[1]!;
  const task = await taskEnded(t.services.orm, taskId);
  expect(task.state, task.error).toBe('SUCCEEDED');
  const mine = lines().filter((l) => l.requestId === requestId);
  return {
    api: mine.filter((l) => l.msg === 'http request'),
    phases: mine.filter((l) => l.msg === 'task phase' && l.taskId === taskId),
    task: mine.filter((l) => l.msg === 'task' && l.taskId === taskId),
    openstack: mine.filter((l) => l.msg === 'openstack call'),
  };
}

describe('logs', () => {
  it('follow an inventory sync from the API into the data mover and its OpenStack calls', async () => {
    const requestId = `portal-${randomUUID()}`;
    const { body, echoed } = await call(requestId, G.InventorySyncDocument, { input: { cloudId } });
    expect(body.errors).toBeUndefined();
    expect(echoed).toBe(requestId);
    const l = await traced(requestId, body.data.inventorySync.task.id);
    expect(l.api).toEqual([expect.objectContaining({ method: 'POST', path: '/graphql', operation: 'inventorySync', status: 200, accountId: expect.any(String) })]);
    expect(l.task).toEqual([expect.objectContaining({ taskType: 'INVENTORY_SYNC', outcome: 'SUCCEEDED', attempt: 1 })]);
    expect(l.phases.length).toBeGreaterThan(0);
    expect(l.openstack.length).toBeGreaterThan(3);
    for (const c of l.openstack) {
      expect(c).toMatchObject({ service: expect.any(String), method: expect.any(String), status: expect.any(Number), openstackRequestId: expect.stringMatching(/^req-/) });
      expect(c.path).not.toContain('?');
    }
    // The simulator logs nothing, so the global ID is checked by what the client sent: the
    // mapping is stable, and the simulator answered with its own request IDs.
    expect(openStackGlobalRequestId(requestId)).toMatch(/^req-[0-9a-f-]{36}$/);
  });

  it('follow a backup through its phases and OpenStack calls', async () => {
    const synced = await call(`sync-${randomUUID()}`, G.InventorySyncDocument, { input: { cloudId } });
    await traced(synced.requestId, synced.body.data.inventorySync.task.id);
    const web1 = await systemFork(t.services.orm).findOneOrFail(Instance, { externalId: sim.seed.servers['web-1']! }, { filters: false });
    const policy = await op(t, admin, G.CreatePolicyDocument, { input: { name: 'logs', destinationId } });
    expect(policy.data!.policyCreate.userErrors).toEqual([]);
    const assigned = await op(t, admin, G.AssignPolicyDocument, { input: { policyId: policy.data!.policyCreate.policy!.id, instanceIds: [gid('Instance', web1.id)] } });
    expect(assigned.errors).toBeUndefined();

    const requestId = randomUUID();
    const { body } = await call(requestId, G.StartBackupDocument, { input: { instanceId: gid('Instance', web1.id) } });
    expect(body.errors).toBeUndefined();
    expect(body.data.startBackup.userErrors).toEqual([]);
    const l = await traced(requestId, body.data.startBackup.task.id);
    expect(l.api).toEqual([expect.objectContaining({ operation: 'startBackup', status: 200 })]);
    expect(l.task).toEqual([expect.objectContaining({ taskType: 'BACKUP', outcome: 'SUCCEEDED' })]);
    const phases = l.phases.map((p) => p.phase);
    expect(phases.length).toBeGreaterThan(2);
    for (const p of l.phases) expect(p).toMatchObject({ outcome: expect.any(String), durationMs: expect.any(Number) });
    expect(l.openstack.some((c) => c.service === 'compute') && l.openstack.some((c) => c.service === 'volumev3')).toBe(true);
  });

  it('keep a caller-chosen ID only when it is a plain token', () => {
    expect(acceptRequestId('portal-1234abcd')).toBe('portal-1234abcd');
    expect(acceptRequestId('has spaces in it')).toBeUndefined();
    expect(acceptRequestId('x'.repeat(129))).toBeUndefined();
    expect(acceptRequestId('short')).toBeUndefined();
  });

  it('carry no secret the flow used, nor the token', () => {
    const text = readFileSync(logFile, 'utf8');
    const used = [...Object.values(SECRETS), admin, sim.seed.admin.password, ...FIXED_TEST_SECRETS];
    expect(leakedSecrets(text, used)).toEqual([]);
    expect(text).not.toContain('Bearer ');
  });
});
