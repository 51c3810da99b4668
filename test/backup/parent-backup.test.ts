// Which backup a new one builds on (its parent), or none (a FULL): the policy's fullEvery, the
// startBackup type, and a chain whose full backups retention deleted.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Backup, Policy, Task, type BackupDestination, type Instance } from '../../src/db/entities/index.ts';
import { systemFork, type Orm } from '../../src/db/orm.ts';
import { parentBackup } from '../../src/engine/backup/backup-record.ts';
import type { TaskContext } from '../../src/engine/task-runner.ts';
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

it('AUTO follows fullEvery, FULL and INCREMENTAL are obeyed, and a chain left without a full gets one', async () => {
  const s = seeder(orm);
  const project = await s.project(await s.cloud());
  const [vm] = await s.instances(project, 1);
  const destination = await s.destination();
  const em = systemFork(orm);
  const policy = await em.findOneOrFail(Policy, (await s.policy({ destination })).id);
  policy.fullEvery = 2;
  await em.flush();

  let day = 0;
  const done = async (type: 'FULL' | 'INCREMENTAL') => {
    const b = em.create(Backup, {
      cloud: project.cloud.id, project: project.id, instance: vm!.id, destination: destination.id, policy: policy.id, type, state: 'AVAILABLE',
      repositoryBackupId: `r${++day}`, completedAt: new Date(Date.UTC(2026, 0, day)),
    });
    await em.flush();
    return b;
  };
  /** The parent a new backup of `type` would get. */
  const parentOf = async (type: 'AUTO' | 'FULL' | 'INCREMENTAL') => {
    const task = em.create(Task, { type: 'BACKUP', project: project.id, instance: vm!.id, destination: destination.id, policy: policy.id, params: { type } });
    const running = em.create(Backup, { cloud: project.cloud.id, project: project.id, instance: vm!.id as unknown as Instance, destination: destination.id as unknown as BackupDestination, policy: policy.id, task });
    await em.flush();
    const parent = await parentBackup({ em, task } as unknown as TaskContext, destination, running);
    em.remove(running);
    await em.flush();
    return parent?.id ?? null;
  };

  expect(await parentOf('AUTO')).toBeNull(); // nothing yet: a full
  const f1 = await done('FULL');
  expect(await parentOf('AUTO')).toBe(f1.id);
  const i1 = await done('INCREMENTAL');
  expect(await parentOf('AUTO')).toBe(i1.id); // one incremental since the full: fewer than 2
  const i2 = await done('INCREMENTAL');
  expect(await parentOf('AUTO')).toBeNull(); // two incrementals: a full is due
  expect(await parentOf('INCREMENTAL')).toBe(i2.id);
  expect(await parentOf('FULL')).toBeNull();

  // Retention deleted the full; the incrementals stay: AUTO takes a full again.
  await em.nativeUpdate(Backup, { id: f1.id }, { state: 'DELETED', deletedAt: new Date() });
  await em.nativeUpdate(Backup, { id: i2.id }, { state: 'DELETED', deletedAt: new Date() });
  expect(await parentOf('AUTO')).toBeNull();
  expect(await parentOf('INCREMENTAL')).toBe(i1.id);
});
