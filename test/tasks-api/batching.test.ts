// No N+1 in the task area: the statements for a page of instances with their last backup (and
// its destination), or a page of tasks with their references, do not grow with the page size.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Backup, Task } from '../../src/db/entities/index.ts';
import { systemFork } from '../../src/db/orm.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { seeder } from '../helpers/seed.ts';

describe('batched loading in the task area', () => {
  let t: TestApp;
  let operator: string;
  let statements = 0;

  beforeAll(async () => {
    t = await startTestApp();
    const s = seeder(t.services.orm);
    const cloud = await s.cloud();
    const project = await s.project(cloud);
    const dest = await s.destination();
    const policy = await s.policy();
    const instances = await s.instances(project, 30, { policy });
    const em = systemFork(t.services.orm);
    for (const i of instances) {
      for (const state of ['AVAILABLE', 'AVAILABLE', 'FAILED'] as const) {
        em.create(Backup, { cloud: cloud.id, project: project.id, instance: i.id, destination: dest.id, policy: policy.id, state });
      }
      em.create(Task, { type: 'BACKUP', cloud: cloud.id, project: project.id, instance: i.id, destination: dest.id, policy: policy.id });
    }
    await em.flush();
    operator = await t.login('OPERATOR');
    await t.gql(operator, '{ viewer { name } }'); // warm caches (signing keys) outside the counts
    t.services.orm.em.getConnection().getKnex().on('query', () => statements++);
  });
  afterAll(() => t?.close());

  async function countFor(query: string) {
    statements = 0;
    const res = await t.gql(operator, query);
    expect(res.errors).toBeUndefined();
    return { statements, res };
  }

  it('instances with lastBackup: the same number of statements for 10 and 30', async () => {
    const q = (n: number) => `{ instances(first: ${n}) { edges { node { name project { name } lastBackup { id state destination { name } policy { name } } } } } }`;
    const small = await countFor(q(10));
    const large = await countFor(q(30));
    expect(large.res.data.instances.edges).toHaveLength(30);
    expect(large.res.data.instances.edges.every((e: any) => e.node.lastBackup?.state === 'AVAILABLE')).toBe(true);
    expect(large.statements).toBe(small.statements);
    console.log(`instances+lastBackup: ${small.statements} statements for 10, ${large.statements} for 30`);
  });

  it('tasks with instance, project, policy, destination: the same number of statements for 10 and 30', async () => {
    const q = (n: number) => `{ tasks(first: ${n}) { edges { node { state instance { name lastBackup { id } } project { name } policy { name } destination { name } } } } }`;
    const small = await countFor(q(10));
    const large = await countFor(q(30));
    expect(large.res.data.tasks.edges).toHaveLength(30);
    expect(large.statements).toBe(small.statements);
    console.log(`tasks+references: ${small.statements} statements for 10, ${large.statements} for 30`);
  });
});
