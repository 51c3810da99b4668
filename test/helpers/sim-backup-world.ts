// The world of the BACKUP/RESTORE task tests: a test database, the OpenStack simulator registered
// as a cloud (the admin's credential set in Default, optionally lab2's too), its proxy VM in
// node configuration `sim-proxy`, a file-system destination in a temporary folder, the inventory
// synced, and a real data mover serving `sim-proxy` with the given executors (none without).
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BackupDestination, Cloud, CloudAuthDomain, Instance, NodeConfiguration, type Task } from '../../src/db/entities/index.ts';
import { openOrm, systemFork, type Orm } from '../../src/db/orm.ts';
import type { SecretBox } from '../../src/db/secrets.ts';
import { startDataMover, type RunningDataMover } from '../../src/engine/data-mover.ts';
import { syncInventory } from '../../src/engine/inventory/sync.ts';
import type { Executors } from '../../src/engine/task-runner.ts';
import { createTestDatabase } from './database.ts';
import { startSimulator, type TestSim } from './simulator.ts';
import type { SimulatorOptions } from '../../src/demo/simulator/simulator.ts';
import { taskEnded } from './task-ended.ts';

export type SimBackupWorld = {
  t: TestSim;
  orm: Orm;
  databaseUrl: string;
  cloudId: string;
  destinationId: string;
  repoDir: string;
  /** The synced Instance row of a seeded server (`web-1`, `db-1`…). */
  instance(server: string): Promise<Instance>;
  /** The task once it ended, or as it is after `ms`. */
  finished(taskId: string, ms?: number): Promise<Task>;
  close(): Promise<void>;
};

export async function startSimBackupWorld(o: {
  name: string;
  secrets: SecretBox;
  /** None: no data mover in this process (tests run their own). */
  executors?: Executors;
  /** Simulator options (e.g. a longer `delayMs` for slower backups). */
  sim?: Partial<SimulatorOptions>;
  cloud?: Partial<Pick<Cloud, 'downloadImage' | 'keepLastSnapshot'>>;
  /** Also lab2's credential set (a second auth domain). */
  lab2?: boolean;
}): Promise<SimBackupWorld> {
  const t = await startSimulator(o.sim);
  const db = await createTestDatabase();
  const orm = await openOrm(db.url);
  const repoDir = mkdtempSync(path.join(os.tmpdir(), `sb-${o.name}-repo-`));
  let mover: RunningDataMover | undefined;
  const close = async () => {
    await mover?.stop();
    await orm.close();
    await db.drop();
    await t.close();
    rmSync(repoDir, { recursive: true, force: true });
  };
  try {
    const em = systemFork(orm);
    const cloud = em.create(Cloud, { name: 'sim', keystoneUrl: t.sim.keystoneUrl, region: 'RegionOne', ...o.cloud });
    em.create(CloudAuthDomain, { cloud, name: 'Default', domainId: 'default', username: t.seed.admin.username, password: o.secrets.seal(t.seed.admin.password), defaultProject: 'admin' });
    if (o.lab2) {
      em.create(CloudAuthDomain, { cloud, name: 'lab2', domainId: t.seed.lab2.domainId, username: t.seed.lab2.username, password: o.secrets.seal(t.seed.lab2.password), defaultProject: t.seed.lab2.project });
    }
    cloud.nodeConfiguration = em.create(NodeConfiguration, { name: 'sim-proxy', proxyServerId: t.seed.proxyServerId, attachmentLimit: 4, cloud });
    const dest = em.create(BackupDestination, { name: 'local', kind: 'FILE_SYSTEM', url: `file://${repoDir}/repo`, chunkSizeBytes: 64 << 10 });
    await em.flush();
    await syncInventory({ orm, secrets: o.secrets }, cloud.id);
    if (o.executors) mover = await startDataMover({ orm, databaseUrl: db.url, executors: o.executors, publisher: { publish: async () => {} }, nodeConfiguration: 'sim-proxy', name: `${o.name}-mover` });
    return {
      t, orm, databaseUrl: db.url, cloudId: cloud.id, destinationId: dest.id, repoDir, close,
      instance: (server) => systemFork(orm).findOneOrFail(Instance, { externalId: t.seed.servers[server]! }, { filters: false }),
      finished: (taskId, ms) => taskEnded(orm, taskId, ms),
    };
  } catch (e) {
    await close().catch(() => {});
    throw e;
  }
}
