// Interval accounting on hand-made histories: range edges, deletions, excluded destinations,
// the front-end rule, and tenant scoping of the billing functions.
import type { EntityManager } from '@mikro-orm/postgresql';
import { beforeEach, describe, expect, it } from 'vitest';
import { frontEndCapacity } from '../../billing/front-end.ts';
import { backfillFromBackups, recordBackupCompleted, recordBackupDeleted, usageFromBackup } from '../../billing/ledger.ts';
import { ReportInputError } from '../../billing/report-common.ts';
import { sizeReport } from '../../billing/size-report.ts';
import { Backup } from '../../src/db/entities/index.ts';
import { systemFork, type Orm } from '../../src/db/orm.ts';
import { completeBackup, createBackup, useBillingDatabase, type Inventory } from './seed.ts';

const GB = 1_000_000_000n;
const at = (iso: string) => new Date(iso);
const ALL = { projectIds: null };

const db = useBillingDatabase();
let orm: Orm;
let inv: Inventory;
let em: EntityManager;
beforeEach(() => ({ orm, inv, em } = db));

async function complete(o: Parameters<typeof createBackup>[2]) {
  const { backup, recorded } = await completeBackup(db, o);
  expect(recorded).toBe(true);
  return backup;
}

const byInstance = async (from: string, to: string, measure: 'STORED' | 'BYTE_HOURS' | 'TRANSFERRED' | 'STORED_ADDED' = 'BYTE_HOURS', filter = {}) => {
  const r = await sizeReport(em, { from: at(from), to: at(to), groupBy: ['INSTANCE'], measure, filter }, ALL);
  return Object.fromEntries(r.rows.map((row) => [row.keys[0]!.name, row.value]));
};

describe('interval accounting', () => {
  it('counts byte-hours only inside [from, to): created before from, deleted mid-range, deleted after to, zero-length', async () => {
    const [vm0, vm1, vm2, vm3] = inv.instances;
    const b0 = await complete({ instance: vm0!, stored: 10n * GB, completedAt: at('2026-03-01T00:00:00Z') }); // before from, deleted mid-range
    const b1 = await complete({ instance: vm1!, stored: 2n * GB, completedAt: at('2026-03-10T12:00:00Z') }); // inside, deleted after to
    const b2 = await complete({ instance: vm2!, stored: 5n * GB, completedAt: at('2026-03-12T00:00:00Z') }); // zero-length
    await complete({ instance: vm3!, stored: 1n * GB, completedAt: at('2026-04-01T00:00:00Z') }); // completed exactly at `to`
    await recordBackupDeleted(em, b0.id, at('2026-03-05T06:00:00Z'));
    await recordBackupDeleted(em, b1.id, at('2026-05-01T00:00:00Z'));
    await recordBackupDeleted(em, b2.id, at('2026-03-12T00:00:00Z'));

    const bh = await byInstance('2026-03-02T00:00:00Z', '2026-04-01T00:00:00Z');
    expect(bh['vm-0']).toBe(10n * GB * (3n * 24n + 6n)); // 2 Mar 00:00 → 5 Mar 06:00
    expect(bh['vm-1']).toBe(2n * GB * (21n * 24n + 12n)); // 10 Mar 12:00 → 1 Apr
    expect(bh['vm-2']).toBe(0n); // zero-length: no byte-time (its row shows because it was completed in range)
    expect(bh['vm-3']).toBeUndefined(); // [from, to) excludes `to`

    const stored = await byInstance('2026-03-02T00:00:00Z', '2026-04-01T00:00:00Z', 'STORED');
    expect(stored['vm-0']).toBe(0n); // deleted before the end
    expect(stored['vm-1']).toBe(2n * GB);
    const added = await byInstance('2026-03-02T00:00:00Z', '2026-04-01T00:00:00Z', 'STORED_ADDED');
    expect(added['vm-2']).toBe(5n * GB);
    expect(added['vm-0']).toBe(0n);

    // A range wholly inside one backup's life, within one day.
    const oneHour = await byInstance('2026-03-03T10:00:00Z', '2026-03-03T11:00:00Z');
    expect(oneHour).toEqual({ 'vm-0': 10n * GB });
  });

  it('never rewrites history: recording twice, deleting twice, or deleting before completion', async () => {
    const b = await complete({ instance: inv.instances[0]!, stored: 3n * GB, completedAt: at('2026-06-01T00:00:00Z') });
    expect(await recordBackupCompleted(em, usageFromBackup(b))).toBe(false);
    expect(await recordBackupDeleted(em, b.id, at('2026-06-02T00:00:00Z'))).toBe(true);
    expect(await recordBackupDeleted(em, b.id, at('2026-06-30T00:00:00Z'))).toBe(false);
    expect(await byInstance('2026-06-01T00:00:00Z', '2026-07-01T00:00:00Z')).toEqual({ 'vm-0': 3n * GB * 24n });
    const early = await complete({ instance: inv.instances[1]!, stored: 3n * GB, completedAt: at('2026-06-10T00:00:00Z') });
    await recordBackupDeleted(em, early.id, at('2026-06-09T00:00:00Z'));
    expect((await byInstance('2026-06-01T00:00:00Z', '2026-07-01T00:00:00Z'))['vm-1']).toBe(0n);
  });

  it('keeps dimension keys copied at completion when inventory changes later', async () => {
    const vm = inv.instances[0]!;
    await complete({ instance: vm, stored: GB, completedAt: at('2026-07-01T00:00:00Z') });
    const fork = systemFork(orm);
    await fork.nativeUpdate('Instance', { id: vm.id }, { project: inv.projects[2]!.id });
    const r = await sizeReport(em, { from: at('2026-07-01T00:00:00Z'), to: at('2026-07-02T00:00:00Z'), groupBy: ['PROJECT'], measure: 'STORED' }, ALL);
    expect(r.rows.map((x) => x.keys[0]!.id)).toEqual([inv.projects[0]!.id]);
    await fork.nativeUpdate('Instance', { id: vm.id }, { project: inv.projects[0]!.id });
  });

  it('leaves out excluded destinations (a free tier)', async () => {
    const vm = inv.instances[0]!;
    await complete({ instance: vm, destination: inv.destinations[0], stored: 4n * GB, transferred: 4n * GB, completedAt: at('2026-08-01T00:00:00Z') });
    await complete({ instance: vm, destination: inv.destinations[1], stored: 6n * GB, transferred: 6n * GB, completedAt: at('2026-08-02T00:00:00Z') });
    const all = await byInstance('2026-08-01T00:00:00Z', '2026-09-01T00:00:00Z', 'TRANSFERRED');
    expect(all['vm-0']).toBe(10n * GB);
    const paid = await byInstance('2026-08-01T00:00:00Z', '2026-09-01T00:00:00Z', 'TRANSFERRED', { excludeDestinationIds: [inv.destinations[1]!.id] });
    expect(paid['vm-0']).toBe(4n * GB);
    const r = await sizeReport(em, { from: at('2026-08-01T00:00:00Z'), to: at('2026-09-01T00:00:00Z'), groupBy: ['DESTINATION'], measure: 'STORED', filter: { excludeDestinationIds: [inv.destinations[1]!.id] } }, ALL);
    expect(r.rows.map((x) => [x.keys[0]!.name, x.value])).toEqual([['dest-0', 4n * GB]]);
    expect(r.total).toBe(4n * GB);
  });

  it('fills the ledger from existing backup rows (backfill) with the same figures', async () => {
    const vm = inv.instances[0]!;
    const a = await createBackup(orm, inv, { instance: vm, stored: 2n * GB, completedAt: at('2026-09-01T00:00:00Z') });
    await createBackup(orm, inv, { instance: vm, stored: 1n * GB, completedAt: at('2026-09-02T00:00:00Z') });
    await systemFork(orm).nativeUpdate(Backup, { id: a.id }, { state: 'DELETED', deletedAt: at('2026-09-03T00:00:00Z') });
    await backfillFromBackups(em);
    expect(await byInstance('2026-09-01T00:00:00Z', '2026-09-04T00:00:00Z')).toEqual({ 'vm-0': 2n * GB * 48n + 1n * GB * 48n });
  });
});

describe('front-end capacity', () => {
  it('takes the last full backup held at `to`: incrementals excluded, a deleted full gives way to the older full', async () => {
    const vm = inv.instances[0]!;
    const oldFull = await complete({ instance: vm, type: 'FULL', frontEnd: 100n * GB, completedAt: at('2026-10-01T00:00:00Z') });
    await complete({ instance: vm, type: 'INCREMENTAL', frontEnd: 500n * GB, completedAt: at('2026-10-02T00:00:00Z') });
    const newFull = await complete({ instance: vm, type: 'FULL', frontEnd: 120n * GB, completedAt: at('2026-10-03T00:00:00Z') });
    await complete({ instance: vm, type: 'INCREMENTAL', frontEnd: 900n * GB, completedAt: at('2026-10-04T00:00:00Z') });
    await complete({ instance: inv.instances[1]!, type: 'INCREMENTAL', frontEnd: 50n * GB, completedAt: at('2026-10-04T00:00:00Z') });
    const fe = async (to: string) => {
      const r = await frontEndCapacity(em, { to: at(to), groupBy: ['INSTANCE'] }, ALL);
      return Object.fromEntries(r.rows.map((x) => [x.keys[0]!.name, x.value]));
    };
    expect(await fe('2026-10-05T00:00:00Z')).toEqual({ 'vm-0': 120n * GB }); // vm-1 has no full: nothing
    expect(await fe('2026-10-02T12:00:00Z')).toEqual({ 'vm-0': 100n * GB });
    await recordBackupDeleted(em, newFull.id, at('2026-10-06T00:00:00Z'));
    expect(await fe('2026-10-05T00:00:00Z')).toEqual({ 'vm-0': 120n * GB }); // still held then
    expect(await fe('2026-10-07T00:00:00Z')).toEqual({ 'vm-0': 100n * GB });
    await recordBackupDeleted(em, oldFull.id, at('2026-10-06T00:00:00Z'));
    expect(await fe('2026-10-07T00:00:00Z')).toEqual({});
  });
});

describe('scoping and input checks', () => {
  it('gives a tenant scope only its projects, even when its filter names others', async () => {
    await complete({ instance: inv.instances[0]!, stored: GB, completedAt: at('2026-11-01T00:00:00Z') }); // project-0
    await complete({ instance: inv.instances[1]!, stored: GB, completedAt: at('2026-11-01T00:00:00Z') }); // project-1
    const input = { from: at('2026-11-01T00:00:00Z'), to: at('2026-11-02T00:00:00Z'), groupBy: ['PROJECT' as const], measure: 'STORED' as const };
    const mine = await sizeReport(em, { ...input, filter: { projectIds: [inv.projects[1]!.id] } }, { projectIds: [inv.projects[0]!.id] });
    expect(mine.rows).toEqual([]);
    const own = await sizeReport(em, input, { projectIds: [inv.projects[0]!.id] });
    expect(own.rows.map((r) => r.keys[0]!.id)).toEqual([inv.projects[0]!.id]);
    const none = await sizeReport(em, input, { projectIds: [] });
    expect(none.rows).toEqual([]);
    const fe = await frontEndCapacity(em, { to: at('2026-11-02T00:00:00Z'), groupBy: ['PROJECT'] }, { projectIds: [inv.projects[1]!.id] });
    expect(fe.rows.map((r) => r.keys[0]!.id)).toEqual([inv.projects[1]!.id]);
  });

  it('refuses an empty or reversed range, a too long range, no groups and bad ids', async () => {
    const base = { from: at('2026-01-02T00:00:00Z'), to: at('2026-01-02T00:00:00Z'), groupBy: ['PROJECT' as const], measure: 'STORED' as const };
    await expect(sizeReport(em, base, ALL)).rejects.toMatchObject({ code: 'INVALID_RANGE' });
    await expect(sizeReport(em, { ...base, to: at('2036-01-01T00:00:00Z') }, ALL)).rejects.toMatchObject({ code: 'RANGE_TOO_LONG' });
    await expect(sizeReport(em, { ...base, to: at('2026-02-01T00:00:00Z'), groupBy: [] }, ALL)).rejects.toMatchObject({ code: 'GROUP_BY_EMPTY' });
    await expect(sizeReport(em, { ...base, to: at('2026-02-01T00:00:00Z'), filter: { instanceIds: ["x' or 1=1"] } }, ALL)).rejects.toBeInstanceOf(ReportInputError);
  });
});
