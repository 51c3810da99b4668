// Price cards and invoices: free tier, slot prices, month boundaries, most-specific card,
// exact money; and the per-policy price tags.
import type { EntityManager } from '@mikro-orm/postgresql';
import { beforeEach, describe, expect, it } from 'vitest';
import { recordBackupDeleted } from '../../billing/ledger.ts';
import { policyPriceTags } from '../../billing/policy-prices.ts';
import { createPriceCard, formatCents, inSlot, invoicePreview, matchCard, parseMoney, PriceError, type Card } from '../../billing/price-card.ts';
import type { Orm } from '../../src/db/orm.ts';
import { completeBackup, createBackup, useBillingDatabase, type Inventory } from './seed.ts';

const GB = 1_000_000_000n;
const TB = 1000n * GB;
const at = (iso: string) => new Date(iso);
const NOW = at('2026-11-27T00:00:00Z');

const db = useBillingDatabase(['price_card']);
let orm: Orm;
let inv: Inventory;
let em: EntityManager;
beforeEach(() => ({ orm, inv, em } = db));

async function complete(o: Parameters<typeof createBackup>[2]) {
  return (await completeBackup(db, o)).backup;
}

describe('money', () => {
  it('parses decimal prices exactly and rejects floats in disguise', () => {
    expect(parseMoney('0.1')).toBe(100_000n);
    expect(parseMoney('12')).toBe(12_000_000n);
    expect(parseMoney('0.000001')).toBe(1n);
    for (const bad of ['-1', '1e3', '0.0000001', 'abc', '']) expect(() => parseMoney(bad)).toThrow(PriceError);
    expect(formatCents(123456n)).toBe('1234.56');
    expect(formatCents(5n)).toBe('0.05');
  });

  it('matches slots that wrap past midnight and prefers the most specific, newest card', () => {
    expect(inSlot({ slotFromHour: 22, slotToHour: 2 }, 23)).toBe(true);
    expect(inSlot({ slotFromHour: 22, slotToHour: 2 }, 1)).toBe(true);
    expect(inSlot({ slotFromHour: 22, slotToHour: 2 }, 2)).toBe(false);
    expect(inSlot({ slotFromHour: 8, slotToHour: 18 }, 7)).toBe(false);
    const card = (id: string, o: Partial<Card>, t: number): Card => ({
      id, name: id, policyId: null, destinationId: null, slotFromHour: null, slotToHour: null, currency: 'EUR',
      storedPerGbMonthMicros: 0n, frontEndPerTbMonthMicros: 0n, createdAt: new Date(t), ...o,
    });
    const cards = [
      card('default', {}, 1), card('default-new', {}, 2), card('dest', { destinationId: 'd' }, 3),
      card('policy', { policyId: 'p' }, 4), card('policy-busy', { policyId: 'p', slotFromHour: 18, slotToHour: 23 }, 5),
    ];
    expect(matchCard(cards, 'x', 'y', 3)?.id).toBe('default-new');
    expect(matchCard(cards, 'x', 'd', 3)?.id).toBe('dest');
    expect(matchCard(cards, 'p', 'd', 3)?.id).toBe('policy');
    expect(matchCard(cards, 'p', 'd', 19)?.id).toBe('policy-busy');
    expect(matchCard([], 'p', 'd', 19)).toBeNull();
  });
});

describe('invoice preview', () => {
  it('bills GB-months over calendar months: a GB held all February is exactly one GB-month', async () => {
    await createPriceCard(em, { name: 'standard', storedPerGbMonth: '0.10', frontEndPerTbMonth: '0' });
    const vm = inv.instances[0]!;
    const b = await complete({ instance: vm, type: 'INCREMENTAL', stored: 30n * GB, completedAt: at('2026-01-31T12:00:00Z') });
    await recordBackupDeleted(em, b.id, at('2026-03-02T00:00:00Z'));

    const feb = await invoicePreview(em, vm.project.id, '2026-02', NOW);
    expect(feb.lines).toMatchObject([{ kind: 'STORAGE', quantity: '30.000000', unit: 'GB-month', unitPrice: '0.100000', amount: '3.00', priceCard: 'standard' }]);
    expect(feb.total).toBe('3.00');
    const jan = await invoicePreview(em, vm.project.id, '2026-01', NOW);
    // 12 of January's 744 hours: 30 × 12/744 = 0.483870967… GB-months → 0.048387… → 0.05
    expect(jan.lines[0]).toMatchObject({ quantity: '0.483871', amount: '0.05' });
    const mar = await invoicePreview(em, vm.project.id, '2026-03', NOW);
    expect(mar.lines[0]).toMatchObject({ quantity: '0.967742', amount: '0.10' }); // 24 of 744 h
    // Another project pays nothing for it.
    expect((await invoicePreview(em, inv.projects[1]!.id, '2026-02', NOW)).lines).toEqual([]);
    // The current month counts usage up to `asOf` only.
    const partial = await invoicePreview(em, vm.project.id, '2026-02', at('2026-02-15T00:00:00Z'));
    expect(partial.lines[0]).toMatchObject({ quantity: '15.000000', amount: '1.50' });
  });

  it('prices a free-tier destination at 0, busy-hour backups higher, and sums exact line amounts', async () => {
    const [p0] = inv.policies;
    await createPriceCard(em, { name: 'default', storedPerGbMonth: '0.02', frontEndPerTbMonth: '5' });
    await createPriceCard(em, { name: 'free-tier', destinationId: inv.destinations[2]!.id, storedPerGbMonth: '0', frontEndPerTbMonth: '0' });
    await createPriceCard(em, { name: 'busy', policyId: p0!.id, slotFromHour: 22, slotToHour: 2, storedPerGbMonth: '0.05', frontEndPerTbMonth: '9.5' });
    const vm = inv.instances[0]!; // policy-0, project-0
    // November 2026 has 720 hours; each backup held the whole month.
    const start = at('2026-10-31T23:30:00Z'); // started 23:29 → busy slot
    await complete({ instance: vm, policy: p0, destination: inv.destinations[0], type: 'FULL', stored: 100n * GB, frontEnd: 2n * TB, completedAt: start });
    await complete({ instance: vm, policy: p0, destination: inv.destinations[0], type: 'INCREMENTAL', stored: 10n * GB, completedAt: at('2026-10-31T03:30:00Z') });
    await complete({ instance: vm, policy: p0, destination: inv.destinations[2], type: 'INCREMENTAL', stored: 500n * GB, completedAt: at('2026-10-31T12:00:00Z') }); // outside the busy slot

    const inv11 = await invoicePreview(em, vm.project.id, '2026-11', at('2026-12-05T00:00:00Z'));
    const lines = inv11.lines.map((l) => [l.kind, l.priceCard, l.quantity, l.unitPrice, l.amount]);
    expect(lines).toEqual(expect.arrayContaining([
      ['STORAGE', 'busy', '100.000000', '0.050000', '5.00'],
      ['STORAGE', 'default', '10.000000', '0.020000', '0.20'],
      ['STORAGE', 'free-tier', '500.000000', '0.000000', '0.00'],
      ['FRONT_END', 'busy', '2.000000', '9.500000', '19.00'],
    ]));
    expect(lines).toHaveLength(4);
    expect(inv11.total).toBe('24.20');
    expect(inv11.totalCents).toBe(inv11.lines.reduce((s, l) => s + l.amountCents, 0n));
  });

  it('refuses a malformed period', async () => {
    await expect(invoicePreview(em, inv.projects[0]!.id, '2026-13', NOW)).rejects.toMatchObject({ code: 'INVALID_PERIOD' });
  });
});

describe('policy price tags', () => {
  it('gives the average backup size, the front-end data of assigned instances and a price', async () => {
    const [p0, p1] = inv.policies;
    await createPriceCard(em, { name: 'p0-card', policyId: p0!.id, storedPerGbMonth: '0', frontEndPerTbMonth: '7.25' });
    // vm-0, vm-2, vm-4 are assigned policy-0 by the seed; vm-1 policy-1.
    await complete({ instance: inv.instances[0]!, policy: p0, type: 'FULL', stored: 10n * GB, frontEnd: 1n * TB, completedAt: at('2026-11-20T01:00:00Z') });
    await complete({ instance: inv.instances[0]!, policy: p0, type: 'INCREMENTAL', stored: 2n * GB, frontEnd: 1n * TB, completedAt: at('2026-11-21T01:00:00Z') });
    await complete({ instance: inv.instances[2]!, policy: p0, type: 'FULL', stored: 3n * GB, frontEnd: 500n * GB, completedAt: at('2026-11-21T01:00:00Z') });
    await complete({ instance: inv.instances[1]!, policy: p1, type: 'FULL', stored: 1n * GB, frontEnd: 1n * GB, completedAt: at('2026-11-21T01:00:00Z') });
    const tags = await policyPriceTags(em, { to: NOW }, { projectIds: null });
    const t0 = tags.find((t) => t.policyId === p0!.id)!;
    expect(t0).toMatchObject({ averageBackupSize: 5n * GB, backupsCounted: 3, dataToProcess: 1500n * GB, instances: 2, price: '10.88', priceCard: 'p0-card' });
    expect(tags.find((t) => t.policyId === p1!.id)).toMatchObject({ averageBackupSize: 1n * GB, dataToProcess: 1n * GB, price: '0.00', priceCard: null });
    // A tenant of project-2 (vm-2) sees only its own instance's data.
    const mine = await policyPriceTags(em, { to: NOW }, { projectIds: [inv.projects[2]!.id] });
    expect(mine.find((t) => t.policyId === p0!.id)).toMatchObject({ dataToProcess: 500n * GB, averageBackupSize: 3n * GB });
  });
});
