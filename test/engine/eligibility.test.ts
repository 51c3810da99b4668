// A task is created only when the data movers that will run it may write its destination.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { BackupDestination, NodeConfiguration, Task } from '../../src/db/entities/index.ts';
import { openOrm, systemFork, type Orm } from '../../src/db/orm.ts';
import { createTask, TaskError } from '../../src/engine/tasks/tasks.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { seeder } from '../helpers/seed.ts';

let orm: Orm;
let drop: () => Promise<void>;
beforeAll(async () => {
  const db = await createTestDatabase();
  drop = db.drop;
  orm = await openOrm(db.url);
});
afterAll(async () => {
  await orm?.close();
  await drop?.();
});

it("refuses a backup into a destination its zone's node configuration may not write, and creates nothing", async () => {
  const s = seeder(orm);
  const cloud = await s.cloud();
  const project = await s.project(cloud);
  const nc = await s.nodeConfiguration();
  const [vm] = await s.instances(project, 1, { zone: await s.zone(cloud, { nodeConfiguration: nc }) });
  const allowed = await s.destination();
  const other = await s.destination();
  const em = systemFork(orm);
  (await em.findOneOrFail(BackupDestination, allowed.id, { populate: ['nodeConfigurations'] })).nodeConfigurations.add(em.getReference(NodeConfiguration, nc.id));
  await em.flush();

  const start = (destinationId: string) =>
    systemFork(orm).transactional((tx) =>
      createTask(tx as never, { type: 'BACKUP', project, instance: vm!, cloud, destination: tx.getReference(BackupDestination, destinationId) }, null),
    );
  const refused = await start(other.id).catch((e) => e);
  expect(refused).toBeInstanceOf(TaskError);
  expect(refused.code).toBe('DESTINATION_NOT_WRITABLE');
  expect(await systemFork(orm).count(Task, { instance: vm!.id })).toBe(0);

  const task = await start(allowed.id);
  expect(await systemFork(orm).count(Task, { id: task.id })).toBe(1);
});
