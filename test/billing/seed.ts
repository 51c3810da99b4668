// A small inventory for billing tests, created through the ORM: one cloud, projects, zones,
// instances, destinations and policies, with ids tests can refer to.
import type { EntityManager } from '@mikro-orm/postgresql';
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { recordBackupCompleted, usageFromBackup } from '../../billing/ledger.ts';
import { AvailabilityZone, Backup, BackupDestination, Cloud, Instance, Policy, Project, type BackupType } from '../../src/db/entities/index.ts';
import type { Orm } from '../../src/db/orm.ts';
import { openOrm, systemFork } from '../../src/db/orm.ts';
import { createTestDatabase } from '../helpers/database.ts';

export type Inventory = {
  cloud: Cloud;
  projects: Project[];
  zones: AvailabilityZone[];
  instances: Instance[];
  destinations: BackupDestination[];
  policies: Policy[];
};

export async function seedInventory(orm: Orm, sizes = { projects: 3, instances: 6, zones: 2, destinations: 3, policies: 2 }): Promise<Inventory> {
  const em = systemFork(orm) as EntityManager;
  const cloud = em.create(Cloud, { name: 'cloud-a', keystoneUrl: 'http://keystone.test/v3', region: 'r1' });
  const projects = Array.from({ length: sizes.projects }, (_v, i) => em.create(Project, { cloud, externalId: `p${i}`, name: `project-${i}` }));
  const zones = Array.from({ length: sizes.zones }, (_v, i) => em.create(AvailabilityZone, { cloud, name: `zone-${i}` }));
  const destinations = Array.from({ length: sizes.destinations }, (_v, i) =>
    em.create(BackupDestination, { name: `dest-${i}`, kind: 'FILE_SYSTEM', url: `file:///tmp/dest-${i}` }));
  const policies = Array.from({ length: sizes.policies }, (_v, i) =>
    em.create(Policy, { name: `policy-${i}`, destination: destinations[i % destinations.length], schedules: [{ timesOfDay: [`${String(2 + i * 12).padStart(2, '0')}:00`], windowMinutes: 60 }] }));
  const instances = Array.from({ length: sizes.instances }, (_v, i) =>
    em.create(Instance, { cloud, project: projects[i % projects.length]!, zone: zones[i % zones.length], externalId: `vm${i}`, name: `vm-${i}`, policy: policies[i % policies.length] }));
  await em.flush();
  return { cloud, projects, zones, instances, destinations, policies };
}

/** A completed backup row of `instance` (through the ORM), as the engine would leave it. */
export async function createBackup(
  orm: Orm,
  inv: Inventory,
  o: { instance: Instance; destination?: BackupDestination; policy?: Policy | null; type?: BackupType; stored?: bigint; frontEnd?: bigint; transferred?: bigint; completedAt: Date; durationSeconds?: number },
): Promise<Backup> {
  const em = systemFork(orm) as EntityManager;
  const backup = em.create(Backup, {
    cloud: inv.cloud,
    project: em.getReference(Project, o.instance.project.id),
    instance: em.getReference(Instance, o.instance.id),
    zone: o.instance.zone ? em.getReference(AvailabilityZone, o.instance.zone.id) : undefined,
    policy: o.policy === null ? undefined : em.getReference(Policy, (o.policy ?? o.instance.policy!).id),
    destination: em.getReference(BackupDestination, (o.destination ?? inv.destinations[0]!).id),
    type: o.type ?? 'FULL',
    state: 'AVAILABLE',
    completedAt: o.completedAt,
    durationSeconds: o.durationSeconds ?? 60,
    storedBytes: o.stored ?? 0n,
    frontEndBytes: o.frontEnd ?? 0n,
    transferredBytes: o.transferred ?? 0n,
  });
  await em.flush();
  return backup;
}

export type BillingDatabase = { orm: Orm; inv: Inventory; em: EntityManager };

const LEDGER_TABLES = ['usage_interval', 'usage_series', 'usage_daily', 'usage_checkpoint', 'usage_checkpoint_week'];

/**
 * A test file's own database with the inventory seeded once; before each test the ledger (and
 * the `alsoEmpty` tables) and the backups are emptied and `em` is a fresh fork. Call at the top
 * level of a test file; read the fields inside tests and hooks.
 */
export function useBillingDatabase(alsoEmpty: string[] = []): BillingDatabase {
  const ctx = {} as BillingDatabase;
  let drop: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    const db = await createTestDatabase();
    drop = db.drop;
    ctx.orm = await openOrm(db.url);
    ctx.inv = await seedInventory(ctx.orm);
  });
  afterAll(async () => {
    await ctx.orm?.close();
    await drop?.();
  });
  beforeEach(async () => {
    ctx.em = systemFork(ctx.orm) as EntityManager;
    await ctx.em.execute(`truncate ${[...LEDGER_TABLES, ...alsoEmpty].join(', ')}`);
    await ctx.em.execute('delete from backup');
  });
  return ctx;
}

/** A completed backup row (createBackup) entered into the ledger; returns it and whether the ledger recorded it now. */
export async function completeBackup(db: BillingDatabase, o: Parameters<typeof createBackup>[2]): Promise<{ backup: Backup; recorded: boolean }> {
  const backup = await createBackup(db.orm, db.inv, o);
  return { backup, recorded: await recordBackupCompleted(db.em, usageFromBackup(backup)) };
}
