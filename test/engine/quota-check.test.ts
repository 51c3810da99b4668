import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Task, type Instance, type Project } from '../../src/db/entities/index.ts';
import { openOrm, systemFork, type Orm } from '../../src/db/orm.ts';
import { checkQuotas, describeFinding, type QuotaRequest } from '../../src/engine/quotas/quota-check.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { seeder } from '../helpers/seed.ts';

describe('quota admission', () => {
  let orm: Orm;
  let drop: () => Promise<void>;
  beforeAll(async () => {
    const db = await createTestDatabase();
    drop = db.drop;
    orm = await openOrm(db.url, { pool: { min: 0, max: 20 } });
  });
  afterAll(async () => {
    await orm?.close();
    await drop?.();
  });

  /** One startBackup-like transaction: check, then create the task if admitted. */
  async function tryStart(req: QuotaRequest, instance: Instance, project: Project) {
    return systemFork(orm).transactional(async (em) => {
      const decision = await checkQuotas(em, req);
      if (decision.admitted) {
        em.create(Task, { type: req.action, project: project.id, instance: instance.id, params: { quotaBytes: req.bytes.toString() } } as any);
      }
      return decision;
    });
  }

  it('admits exactly the hard limit out of 200 concurrent requests', async () => {
    const s = seeder(orm);
    const project = await s.project(await s.cloud());
    const [instance] = await s.instances(project, 1);
    await s.quota({ action: 'BACKUP', scope: 'PROJECT', measure: 'COUNT', windowSeconds: 3600, hardLimit: 37n }, [project]);

    const req: QuotaRequest = { action: 'BACKUP', projectId: project.id, instanceId: instance!.id, bytes: 10n };
    const decisions = await Promise.all(Array.from({ length: 200 }, () => tryStart(req, instance!, project)));

    expect(decisions.filter((d) => d.admitted)).toHaveLength(37);
    expect(await systemFork(orm).count(Task, { project: project.id })).toBe(37);
    const refused = decisions.find((d) => !d.admitted)!;
    expect(describeFinding(refused.refusals[0]!)).toMatch(/37 backups used per project .* hard limit 37/);
  });

  it('alerts past the soft limit, refuses past the hard one, per instance and in bytes', async () => {
    const s = seeder(orm);
    const project = await s.project(await s.cloud());
    const [a, b] = (await s.instances(project, 2)) as [Instance, Instance];
    await s.quota({ action: 'BACKUP', scope: 'INSTANCE', measure: 'BYTES', windowSeconds: 86400, softLimit: 150n, hardLimit: 250n }, [project]);
    const req = (instance: Instance, bytes: bigint): QuotaRequest => ({ action: 'BACKUP', projectId: project.id, instanceId: instance.id, bytes });

    expect(await tryStart(req(a, 100n), a, project)).toMatchObject({ admitted: true, alerts: [] });
    const second = await tryStart(req(a, 100n), a, project); // 200 > soft 150
    expect(second.admitted).toBe(true);
    expect(second.alerts.map((f) => [f.level, f.used, f.requested])).toEqual([['SOFT', 100n, 100n]]);
    const third = await tryStart(req(a, 51n), a, project); // 251 > hard 250
    expect(third.admitted).toBe(false);
    expect(third.refusals.map((f) => [f.level, f.used, f.limit])).toEqual([['HARD', 200n, 250n]]);
    // Exactly at the limit is allowed, and the other instance has its own budget.
    expect((await tryStart(req(a, 50n), a, project)).admitted).toBe(true);
    expect((await tryStart(req(b, 250n), b, project)).admitted).toBe(true);
  });

  it('does not count failed or cancelled tasks, nor tasks outside the window, nor other actions', async () => {
    const s = seeder(orm);
    const project = await s.project(await s.cloud());
    const [instance] = (await s.instances(project, 1)) as [Instance];
    await s.quota({ action: 'BACKUP', scope: 'PROJECT', measure: 'COUNT', windowSeconds: 3600, hardLimit: 1n }, [project]);
    const em = systemFork(orm);
    em.create(Task, { type: 'BACKUP', project: project.id, instance: instance.id, state: 'FAILED' });
    em.create(Task, { type: 'BACKUP', project: project.id, instance: instance.id, state: 'CANCELLED' });
    em.create(Task, { type: 'BACKUP', project: project.id, instance: instance.id, state: 'SUCCEEDED', createdAt: new Date(Date.now() - 2 * 3600_000) });
    em.create(Task, { type: 'RESTORE', project: project.id, instance: instance.id });
    await em.flush();
    const req: QuotaRequest = { action: 'BACKUP', projectId: project.id, instanceId: instance.id, bytes: 0n };
    expect((await tryStart(req, instance, project)).admitted).toBe(true);
    expect((await tryStart(req, instance, project)).admitted).toBe(false);
  });

  it('previews without locking or creating anything', async () => {
    const s = seeder(orm);
    const cloud = await s.cloud();
    const project = await s.project(cloud);
    const other = await s.project(cloud);
    const [instance] = (await s.instances(project, 1)) as [Instance];
    await s.quota({ action: 'RESTORE', scope: 'PROJECT', measure: 'COUNT', windowSeconds: 60, hardLimit: 0n }, [project]);
    const preview = await checkQuotas(systemFork(orm), { action: 'RESTORE', projectId: project.id, instanceId: instance.id, bytes: 0n }, new Date(), { lock: false });
    expect(preview.admitted).toBe(false);
    expect(await systemFork(orm).count(Task, { project: project.id })).toBe(0);
    // A project without the quota is not governed by it.
    expect((await checkQuotas(systemFork(orm), { action: 'RESTORE', projectId: other.id, bytes: 0n }, new Date(), { lock: false })).admitted).toBe(true);
  });
});
