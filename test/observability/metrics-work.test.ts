// /metrics moves with real work: a BACKUP task run by a real data mover against the OpenStack
// simulator raises the byte counters by exactly the figures of its Backup row; a restore by the
// bytes it wrote; a task cancelled while queued counts as finished; the database gauges show queued tasks and live data movers; quota refusals and
// destination errors are counted.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Backup, BackupDestination, Cloud, Quota, Task, type Instance } from '../../src/db/entities/index.ts';
import { systemFork } from '../../src/db/orm.ts';
import { SecretBox } from '../../src/db/secrets.ts';
import { loadConfig } from '../../src/config.ts';
import { backupExecutor } from '../../src/engine/backup/backup-executor.ts';
import { openDestinationRepository } from '../../src/engine/backup/destination-repository.ts';
import { restoreExecutor } from '../../src/engine/backup/restore-executor.ts';
import { cancelTask, createTask } from '../../src/engine/tasks/tasks.ts';
import { createApp, type App } from '../../src/server.ts';
import { buildServices, type Services } from '../../src/services.ts';
import { usageLedger } from '../../billing/ledger.ts';
import { startSimBackupWorld, type SimBackupWorld } from '../helpers/sim-backup-world.ts';
import { sample } from '../helpers/metrics.ts';

const masterKey = randomBytes(32);
const secrets = new SecretBox(masterKey);
let w: SimBackupWorld;
let web1: Instance;
let services: Services;
let app: App;
let dataDir: string;

beforeAll(async () => {
  const deps = { secrets, wait: { intervalMs: 20, timeoutMs: 1500 }, workers: 1, http: { timeoutMs: 5000, retries: 0 }, usage: usageLedger };
  w = await startSimBackupWorld({ name: 'metrics', secrets, executors: { BACKUP: backupExecutor(deps), RESTORE: restoreExecutor(deps) } });
  web1 = await w.instance('web-1');
  dataDir = mkdtempSync(path.join(os.tmpdir(), 'sb-metrics-data-'));
  const config = loadConfig({ STRONGBOX_DATA_DIR: dataDir, STRONGBOX_MASTER_KEY: masterKey.toString('base64') });
  // The world owns the ORM; these services only lend it to the app.
  services = buildServices(config, w.orm.config.get('clientUrl')!, w.orm, async () => {});
  app = createApp(services);
});
afterAll(async () => {
  await services?.close();
  await w?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

const scrape = async () => {
  const res = await app.fetch(new URL('/metrics', 'http://strongbox.test'));
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
  return res.text();
};

const queue = (type: 'BACKUP' | 'RESTORE', backup?: Backup) => systemFork(w.orm).transactional(async (tx) => {
  const b = backup ? await tx.findOneOrFail(Backup, backup.id, { filters: false }) : undefined;
  const restore = b ? { backup: b, project: web1.project, name: 'web-1-metrics', mappings: {} } : undefined;
  const task = await createTask(tx as never, {
    type, cloud: tx.getReference(Cloud, w.cloudId), project: web1.project, instance: web1, backup: b,
    destination: b ? b.destination : tx.getReference(BackupDestination, w.destinationId), maxAttempts: 1, params: b ? { name: 'web-1-metrics', mappings: {} } : { type: 'AUTO' },
  }, null, restore);
  return task.id;
});

describe('/metrics counters move with real work', () => {
  let backup: Backup;

  it('a backup raises the read, transferred and stored bytes by exactly its figures', async () => {
    const before = await scrape();
    const task = await w.finished(await queue('BACKUP'));
    expect(task.error ?? null).toBeNull();
    expect(task.state).toBe('SUCCEEDED');
    backup = await systemFork(w.orm).findOneOrFail(Backup, { task: task.id }, { filters: false });
    expect(backup.readBytes).toBeGreaterThan(0n);
    const after = await scrape();
    const rise = (name: string, labels: Record<string, string>) => sample(after, name, labels) - sample(before, name, labels);
    const local = { destination: 'local' };
    expect(rise('strongbox_backup_read_bytes_total', local)).toBe(Number(backup.readBytes));
    expect(rise('strongbox_backup_transferred_bytes_total', local)).toBe(Number(backup.transferredBytes));
    expect(rise('strongbox_backup_stored_bytes_total', local)).toBe(Number(backup.storedBytes));
    expect(rise('strongbox_backup_duration_seconds_count', local)).toBe(1);
    expect(rise('strongbox_backup_duration_seconds_sum', local)).toBeCloseTo(backup.durationSeconds!, 6);
    expect(rise('strongbox_backup_rate_bytes_per_second_count', local)).toBe(1);
    expect(rise('strongbox_tasks_finished_total', { type: 'BACKUP', state: 'SUCCEEDED' })).toBe(1);
    expect(rise('strongbox_quota_admissions_total', { action: 'BACKUP', outcome: 'admitted' })).toBe(1);
  });

  it('a restore raises the written bytes by the size of the disks it restored', async () => {
    const before = await scrape();
    const task = await w.finished(await queue('RESTORE', backup));
    expect(task.error ?? null).toBeNull();
    expect(task.state).toBe('SUCCEEDED');
    const after = await scrape();
    const disks = await systemFork(w.orm).findOneOrFail(Backup, backup.id, { populate: ['disks'], filters: false });
    const restored = disks.disks.getItems().reduce((n, d) => n + Number(d.sizeBytes), 0);
    const local = { destination: 'local' };
    expect(sample(after, 'strongbox_restore_written_bytes_total', local) - sample(before, 'strongbox_restore_written_bytes_total', local)).toBe(restored);
    expect(sample(after, 'strongbox_restore_duration_seconds_count', local) - sample(before, 'strongbox_restore_duration_seconds_count', local)).toBe(1);
    expect(sample(after, 'strongbox_quota_admissions_total', { action: 'RESTORE', outcome: 'admitted' })).toBeGreaterThanOrEqual(1);
  });

  it('a task cancelled while queued counts as finished CANCELLED (no data mover ever sees it)', async () => {
    const em = systemFork(w.orm);
    // Queued with no job: no data mover can take it before the cancel.
    const task = em.create(Task, { type: 'VERIFY', destination: em.getReference(BackupDestination, w.destinationId) });
    await em.flush();
    const before = await scrape();
    await cancelTask(em, task, null);
    expect(task.state).toBe('CANCELLED');
    const after = await scrape();
    const labels = { type: 'VERIFY', state: 'CANCELLED' };
    expect(sample(after, 'strongbox_tasks_finished_total', labels) - sample(before, 'strongbox_tasks_finished_total', labels)).toBe(1);
  });

  it('the database gauges show queued tasks, queue depth and age, and the live data mover', async () => {
    const em = systemFork(w.orm);
    // A VERIFY task nobody serves here (no job either): queued for an hour.
    const hourAgo = new Date(Date.now() - 3600_000);
    const verify = em.create(Task, { type: 'VERIFY', destination: em.getReference(BackupDestination, w.destinationId), createdAt: hourAgo, updatedAt: hourAgo });
    await em.flush();
    try {
      const text = await scrape();
      expect(sample(text, 'strongbox_tasks', { type: 'VERIFY', state: 'QUEUED' })).toBe(1);
      expect(sample(text, 'strongbox_tasks', { type: 'BACKUP', state: 'RUNNING' })).toBe(0);
      expect(sample(text, 'strongbox_queue_depth', { type: 'VERIFY' })).toBe(1);
      expect(sample(text, 'strongbox_queue_oldest_task_age_seconds', { type: 'VERIFY' })).toBeGreaterThanOrEqual(3600);
      expect(sample(text, 'strongbox_queue_oldest_task_age_seconds', { type: 'BACKUP' })).toBe(0);
      expect(sample(text, 'strongbox_data_movers_alive', { node_configuration: 'sim-proxy' })).toBe(1);
      // No ID ever becomes a label.
      expect(text).not.toContain(verify.id);
      expect(text).not.toContain(web1.id);
    } finally {
      await em.nativeDelete(Task, { id: verify.id });
    }
  });

  it('a hard quota refusal is counted', async () => {
    const em = systemFork(w.orm);
    const quota = em.create(Quota, { name: 'no-backups', action: 'BACKUP', scope: 'PROJECT', measure: 'COUNT', windowSeconds: 3600, hardLimit: 0n, projects: [web1.project] });
    await em.flush();
    const before = await scrape();
    try {
      await expect(queue('BACKUP')).rejects.toThrow(/quota/);
    } finally {
      await em.removeAndFlush(quota);
    }
    const after = await scrape();
    const refused = { action: 'BACKUP', outcome: 'refused' };
    expect(sample(after, 'strongbox_quota_admissions_total', refused) - sample(before, 'strongbox_quota_admissions_total', refused)).toBe(1);
  });

  it('destination errors are counted by destination name and kind', async () => {
    const em = systemFork(w.orm);
    const empty = em.create(BackupDestination, { name: 'empty-folder', kind: 'FILE_SYSTEM', url: `file://${w.repoDir}/nothing-here`, chunkSizeBytes: 64 << 10 });
    await em.flush();
    await expect(openDestinationRepository(empty, secrets)).rejects.toThrow(/not a Strongbox repository/);
    const text = await scrape();
    expect(sample(text, 'strongbox_destination_errors_total', { destination: 'empty-folder', kind: 'not_found' })).toBe(1);
  });
});
