// "Keep the last snapshot or delete it, as configured" (Cloud.keepLastSnapshot), the janitor
// leaving kept snapshots alone, and the proxy's session (the project owning the proxy VM).
// Real PostgreSQL, the OpenStack simulator and a real repository in a temporary folder.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackupDestination, Cloud, Instance, Task } from '../../src/db/entities/index.ts';
import { systemFork, type Orm } from '../../src/db/orm.ts';
import { SecretBox } from '../../src/db/secrets.ts';
import { backupExecutor } from '../../src/engine/backup/backup-executor.ts';
import { connectCloud } from '../../src/engine/openstack-connection.ts';
import { cleanOrphans } from '../../src/engine/strategies/disk-attachment/janitor.ts';
import { KEPT_TAG, TASK_TAG } from '../../src/engine/strategies/disk-attachment/proxy-disks.ts';
import { proxySession } from '../../src/engine/strategies/disk-attachment/proxy-session.ts';
import { createTask } from '../../src/engine/tasks/tasks.ts';
import { startSimBackupWorld, type SimBackupWorld } from '../helpers/sim-backup-world.ts';
import { connect, type TestSim } from '../helpers/simulator.ts';

let w: SimBackupWorld;
let t: TestSim;
let orm: Orm;
let cloudId: string;
let destinationId: string;
let web1: Instance;
const secrets = new SecretBox(randomBytes(32));
const wait = { intervalMs: 20, timeoutMs: 3000 };

beforeAll(async () => {
  const deps = { secrets, wait, workers: 1, http: { timeoutMs: 5000, retries: 0 } };
  w = await startSimBackupWorld({ name: 'keep', secrets, cloud: { keepLastSnapshot: true }, lab2: true, executors: { BACKUP: backupExecutor(deps) } });
  ({ t, orm, cloudId, destinationId } = w);
  web1 = await w.instance('web-1');
});
afterAll(() => w?.close());

async function backup(): Promise<Task> {
  const taskId = await systemFork(orm).transactional(async (tx) => (await createTask(tx as never, {
    type: 'BACKUP', cloud: tx.getReference(Cloud, cloudId), project: web1.project, instance: web1, destination: tx.getReference(BackupDestination, destinationId),
    maxAttempts: 1, priority: 60, params: { type: 'AUTO' },
  }, null)).id);
  return w.finished(taskId);
}

const admin = () => connect(t).clients(connect(t).defaultSession());
const kept = async () => (await admin().cinder.listSnapshots({ allTenants: true })).filter((s) => s.metadata?.[KEPT_TAG]);
const web1Volumes = () => [t.seed.volumes['web-1-root']!, t.seed.volumes['web-1-data']!].sort();

describe('keep the last snapshot', () => {
  let first: string[] = [];

  it('keeps one snapshot per volume, tagged for its volume and no longer for its task', async () => {
    const before = t.sim.counts();
    const task = await backup();
    expect(task.error ?? null).toBeNull();
    expect(task.state).toBe('SUCCEEDED');
    // Temporary volumes and attachments are gone; the two snapshots stay.
    expect(t.sim.counts()).toEqual({ ...before, snapshots: before.snapshots + 2 });
    const snaps = await kept();
    expect(snaps.map((s) => s.metadata[KEPT_TAG]).sort()).toEqual(web1Volumes());
    expect(snaps.map((s) => s.volume_id).sort()).toEqual(web1Volumes());
    expect(snaps.every((s) => !s.metadata[TASK_TAG] && s.status === 'available')).toBe(true);
    first = snaps.map((s) => s.id);
  });

  it('the next backup keeps its own snapshots and deletes the previous ones', async () => {
    const before = t.sim.counts();
    const task = await backup();
    expect(task.state).toBe('SUCCEEDED');
    expect(t.sim.counts()).toEqual(before);
    const snaps = await kept();
    expect(snaps).toHaveLength(2);
    expect(snaps.some((s) => first.includes(s.id))).toBe(false);
  });

  it('the janitor does not take a kept snapshot for an orphan', async () => {
    const ids = (await kept()).map((s) => s.id).sort();
    const result = await cleanOrphans(systemFork(orm), admin(), { proxyServerId: t.seed.proxyServerId, olderThanMinutes: 0, now: new Date(Date.now() + 60_000), wait });
    expect(result).toMatchObject({ volumes: 0, snapshots: 0, errors: [] });
    expect((await kept()).map((s) => s.id).sort()).toEqual(ids);
  });

  it('with the setting off, the next backup deletes its snapshots and the kept ones', async () => {
    await systemFork(orm).nativeUpdate(Cloud, { id: cloudId }, { keepLastSnapshot: false });
    const before = t.sim.counts();
    const task = await backup();
    expect(task.state).toBe('SUCCEEDED');
    expect(await kept()).toEqual([]);
    expect(t.sim.counts()).toEqual({ ...before, snapshots: before.snapshots - 2 });
  });
});

describe('proxy session', () => {
  it('is scoped to the project owning the proxy VM, with the credentials of its domain', async () => {
    const em = systemFork(orm);
    const cloud = await em.findOneOrFail(Cloud, cloudId, { populate: ['authDomains'], filters: false });
    const connection = connectCloud(cloud, secrets, { timeoutMs: 5000, retries: 0 });
    // The seeded proxy is in the admin project (Default domain).
    const own = await (await proxySession(em, connection, cloud, t.seed.proxyServerId)).token();
    expect(own.project?.id).toBe(t.seed.projects.admin);
    // A proxy VM in a lab2 project is reached with lab2's credentials, scoped to that project.
    const other = await (await proxySession(em, connection, cloud, t.seed.servers['app-a1']!)).token();
    expect(other.project?.id).toBe(t.seed.projects['backup-proj-a']);
    expect(other.user.name).toBe(t.seed.lab2.username);
    // Unknown to inventory: the first auth domain's default project.
    const unknown = await (await proxySession(em, connection, cloud, 'not-synced')).token();
    expect(unknown.project?.id).toBe(t.seed.projects.admin);
  });
});
