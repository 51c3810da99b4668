// Quotas through the API: exact hard limits under concurrency, soft-limit alerts, preview.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditEntry, Task, type Instance, type Project } from '../../src/db/entities/index.ts';
import { systemFork } from '../../src/db/orm.ts';
import { Channels, type QuotaAlertEvent } from '../../src/events/channels.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { gid, seeder } from '../helpers/seed.ts';

const START_BACKUP = `mutation($input: StartBackupInput!) { startBackup(input: $input) { task { id } userErrors { code message } } }`;
const PREVIEW = `query($input: QuotaPreviewInput!) { quotaPreview(input: $input) { admitted refusals { level limit used requested message quota { name } } alerts { level } } }`;

describe('quotas on startBackup', () => {
  let t: TestApp;
  let operator: string;
  let project: Project;
  let vms: Instance[];
  const tasksOf = (p: Project) => systemFork(t.services.orm).count(Task, { project: p.id });

  beforeAll(async () => {
    t = await startTestApp();
    const s = seeder(t.services.orm);
    const cloud = await s.cloud();
    project = await s.project(cloud);
    vms = await s.instances(project, 4);
    const dest = await s.destination();
    dest.isDefault = true;
    await s.save(dest);
    operator = await t.login('OPERATOR');
  });
  afterAll(() => t?.close());

  it('admits exactly the hard limit out of 200 concurrent startBackup calls', async () => {
    const s = seeder(t.services.orm);
    const quota = await s.quota({ action: 'BACKUP', scope: 'PROJECT', measure: 'COUNT', windowSeconds: 3600, hardLimit: 23n }, [project]);
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => t.gql(operator, START_BACKUP, { input: { instanceId: gid('Instance', vms[i % 4]!.id), type: 'FULL' } })),
    );
    const payloads = results.map((r) => r.data.startBackup);
    expect(payloads.filter((p) => p.task)).toHaveLength(23);
    const refused = payloads.filter((p) => !p.task);
    expect(refused).toHaveLength(177);
    expect(refused.every((p) => p.userErrors[0].code === 'QUOTA_EXCEEDED')).toBe(true);
    expect(refused[0].userErrors[0].message).toContain('hard limit 23');
    expect(await tasksOf(project)).toBe(23);
    // Out of the way for the next tests.
    const em = systemFork(t.services.orm);
    await em.nativeDelete(Task, { project: project.id });
    await em.nativeDelete('Quota', { id: quota.id });
  });

  it('lets a backup past a soft limit through, with an alert event and an audit entry', async () => {
    const s = seeder(t.services.orm);
    // Each instance has a 1 GiB root volume: the second backup crosses 1.5 GiB.
    const quota = await s.quota({ action: 'BACKUP', scope: 'INSTANCE', measure: 'BYTES', windowSeconds: 86400, softLimit: 3n << 29n }, [project]);
    const alerts = await t.services.pubsub.subscribe<QuotaAlertEvent>(Channels.quotaAlert);
    const input = { instanceId: gid('Instance', vms[0]!.id), type: 'FULL' };
    expect((await t.gql(operator, START_BACKUP, { input })).data.startBackup.userErrors).toEqual([]);
    const second = await t.gql(operator, START_BACKUP, { input });
    expect(second.data.startBackup.task).not.toBeNull();
    const event = (await alerts.next()).value as QuotaAlertEvent;
    expect(event).toMatchObject({ quotaId: quota.id, projectId: project.id, instanceId: vms[0]!.id, used: String(2n << 30n), softLimit: String(3n << 29n) });
    await alerts.return!();
    const audit = await systemFork(t.services.orm).find(AuditEntry, { action: 'quota.soft-limit', objectId: quota.id });
    expect(audit).toHaveLength(1);
    expect(audit[0]!.details.message).toMatch(/soft limit 1610612736/);
    await systemFork(t.services.orm).nativeDelete('Quota', { id: quota.id });
  });

  it('previews the decision without creating anything', async () => {
    const s = seeder(t.services.orm);
    await s.quota({ action: 'BACKUP', scope: 'INSTANCE', measure: 'COUNT', windowSeconds: 3600, hardLimit: 0n }, [project]);
    const before = await tasksOf(project);
    const res = await t.gql(operator, PREVIEW, { input: { action: 'BACKUP', instanceId: gid('Instance', vms[3]!.id) } });
    expect(res.errors).toBeUndefined();
    expect(res.data.quotaPreview).toMatchObject({ admitted: false, refusals: [{ level: 'HARD', limit: 0, used: 0, requested: 1 }], alerts: [] });
    expect(res.data.quotaPreview.refusals[0].message).toMatch(/hard limit 0/);
    expect(await tasksOf(project)).toBe(before);
    const refused = await t.gql(operator, START_BACKUP, { input: { instanceId: gid('Instance', vms[3]!.id), type: 'FULL' } });
    expect(refused.data.startBackup.userErrors[0].code).toBe('QUOTA_EXCEEDED');
    expect(await tasksOf(project)).toBe(before);
  });

  it("does not preview another project's instance for a tenant", async () => {
    const s = seeder(t.services.orm);
    const other = await s.project(await s.cloud());
    const tenant = await t.login('TENANT', [other.id]);
    const res = await t.gql(tenant, PREVIEW, { input: { action: 'BACKUP', instanceId: gid('Instance', vms[0]!.id) } });
    expect(res.data).toBeNull();
    expect(res.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });
});
