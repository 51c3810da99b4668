// A task is created only when the data movers that will run it may write its destination.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { BackupDestination, DataMover, NodeConfiguration, Task } from '../../src/db/entities/index.ts';
import { nodeConfigurationFor } from '../../src/engine/eligibility.ts';
import { systemFork, type Orm } from '../../src/db/orm.ts';
import { createTask, TaskError } from '../../src/engine/tasks/tasks.ts';
import { openTestOrm } from '../helpers/database.ts';
import { seeder } from '../helpers/seed.ts';

let orm: Orm;
let closeDb: (() => Promise<void>) | undefined;
beforeAll(async () => {
  ({ orm, close: closeDb } = await openTestOrm());
});
afterAll(async () => {
  await closeDb?.();
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

it('routes a policy prune to a live data mover that may write its destination, or to the unassigned ones', async () => {
  const s = seeder(orm);
  const destination = await s.destination();
  const policy = await s.policy({ destination });
  const em = systemFork(orm);
  const mover = (name: string, nodeConfiguration: NodeConfiguration | null, alive = true) =>
    em.create(DataMover, { name, host: 'h', nodeConfiguration: nodeConfiguration ?? undefined, lastHeartbeatAt: new Date(Date.now() - (alive ? 0 : 3600_000)) });
  const prune = () => em.create(Task, { type: 'PRUNE', policy, params: {} });

  // Only a configured mover that may not write the destination, and a dead one that may.
  const barred = await s.nodeConfiguration();
  const dead = await s.nodeConfiguration();
  (await em.findOneOrFail(BackupDestination, destination.id, { populate: ['nodeConfigurations'] })).nodeConfigurations.add(em.getReference(NodeConfiguration, dead.id));
  const other = await s.destination();
  (await em.findOneOrFail(BackupDestination, other.id, { populate: ['nodeConfigurations'] })).nodeConfigurations.add(em.getReference(NodeConfiguration, barred.id));
  mover('barred', em.getReference(NodeConfiguration, barred.id));
  mover('dead', em.getReference(NodeConfiguration, dead.id), false);
  await em.flush();
  expect(await nodeConfigurationFor(em, prune())).toBeNull();

  // A live mover of a configuration that may write it gets the job.
  const writer = await s.nodeConfiguration();
  (await em.findOneOrFail(BackupDestination, destination.id, { populate: ['nodeConfigurations'] })).nodeConfigurations.add(em.getReference(NodeConfiguration, writer.id));
  mover('writer', em.getReference(NodeConfiguration, writer.id));
  await em.flush();
  expect(await nodeConfigurationFor(em, prune())).toBe(writer.id);

  // A live unassigned mover writes anywhere: the job stays unrouted for it.
  mover('free', null);
  await em.flush();
  expect(await nodeConfigurationFor(em, prune())).toBeNull();
});
