// An INVENTORY_SYNC task end to end: queued in PostgreSQL, picked by a real data mover with the
// engine's executors, synced from the simulator.
import { loadConfig } from '../../src/config.ts';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Cloud, CloudAuthDomain, Instance, Task } from '../../src/db/entities/index.ts';
import { openOrm, systemFork, type Orm } from '../../src/db/orm.ts';
import { SecretBox } from '../../src/db/secrets.ts';
import { startDataMover, type RunningDataMover } from '../../src/engine/data-mover.ts';
import { executors } from '../../src/engine/executors.ts';
import { enqueueTask } from '../../src/engine/tasks/enqueue.ts';
import type { Services } from '../../src/services.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { startSimulator, type TestSim } from '../helpers/simulator.ts';

let t: TestSim;
let orm: Orm;
let url: string;
let drop: () => Promise<void>;
let mover: RunningDataMover | undefined;
const secrets = new SecretBox(randomBytes(32));

beforeAll(async () => {
  t = await startSimulator();
  const db = await createTestDatabase();
  url = db.url;
  drop = db.drop;
  orm = await openOrm(url);
});
afterAll(async () => {
  await mover?.stop();
  await orm?.close();
  await drop?.();
  await t?.close();
});

it('a queued inventory sync task runs on a data mover and fills the catalog', async () => {
  const em = systemFork(orm);
  const cloud = em.create(Cloud, { name: 'sim', keystoneUrl: t.sim.keystoneUrl, region: 'RegionOne' });
  em.create(CloudAuthDomain, { cloud, name: 'Default', username: t.seed.admin.username, password: secrets.seal(t.seed.admin.password), defaultProject: 'admin' });
  em.create(CloudAuthDomain, { cloud, name: 'lab2', username: t.seed.lab2.username, password: secrets.seal(t.seed.lab2.password), defaultProject: t.seed.lab2.project });
  await em.flush();
  const taskId = await systemFork(orm).transactional(async (tx) => {
    const task = tx.create(Task, { type: 'INVENTORY_SYNC', cloud: cloud.id, priority: 70 });
    await tx.flush();
    await enqueueTask(tx as never, task);
    return task.id;
  });

  const services = { orm, secrets, config: loadConfig({}) } as unknown as Services; // what the executors use
  mover = await startDataMover({ orm, databaseUrl: url, executors: executors(services), publisher: { publish: async () => {} }, name: 'inventory-mover' });
  let task: Task;
  const end = Date.now() + 30_000;
  do {
    await new Promise((r) => setTimeout(r, 200));
    task = await systemFork(orm).findOneOrFail(Task, taskId);
  } while (!['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(task.state) && Date.now() < end);
  expect(task.error ?? null).toBeNull();
  expect(task.state).toBe('SUCCEEDED');
  expect(Object.keys(task.phaseSeconds)).toEqual(expect.arrayContaining(['projects', 'reference', 'servers', 'volumes', 'write']));
  expect(await systemFork(orm).count(Instance, { cloud: cloud.id, present: true })).toBe(5);
  expect((await systemFork(orm).findOneOrFail(Cloud, cloud.id)).lastSyncAt).toBeInstanceOf(Date);
});
