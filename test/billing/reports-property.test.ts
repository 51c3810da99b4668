// Property: on random histories (random sizes, completion and deletion times near day edges,
// events folded into the ledger in random order), every report figure equals a brute-force
// computation over the raw intervals, for random ranges, groupings and filters.
import fc from 'fast-check';
import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeWeeks, recordBackupCompleted, recordBackupDeleted, rebuildDailyRollups, type UsageRecord } from '../../billing/ledger.ts';
import { Dimensions, type Dimension, type ReportFilter } from '../../billing/report-common.ts';
import { sizeReport, type SizeFigures } from '../../billing/size-report.ts';
import { frontEndCapacity } from '../../billing/front-end.ts';
import { openOrm, systemFork, type Orm } from '../../src/db/orm.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { seedInventory, type Inventory } from './seed.ts';

const T0 = Date.UTC(2026, 0, 1);
const STEP = 41 * 60_000; // 41 minutes: times fall on both sides of midnights
const SPAN_STEPS = 900; // ≈ 26 days: weekly checkpoints and midnights on both sides

type Arb<A> = A extends fc.Arbitrary<infer T> ? T : never;
type Hist = UsageRecord & { deletedAt: Date | null };

let orm: Orm;
let drop: () => Promise<void>;
let inv: Inventory;

beforeAll(async () => {
  const db = await createTestDatabase();
  drop = db.drop;
  orm = await openOrm(db.url);
  inv = await seedInventory(orm);
});
afterAll(async () => {
  await orm?.close();
  await drop?.();
});

const backupArb = fc.record({
  instance: fc.nat(5),
  destination: fc.nat(2),
  policy: fc.option(fc.nat(1), { nil: null }),
  full: fc.boolean(),
  stored: fc.bigInt(0n, 5_000_000_000_000n),
  frontEnd: fc.bigInt(0n, 9_000_000_000_000n),
  transferred: fc.bigInt(0n, 1_000_000_000n),
  start: fc.nat(SPAN_STEPS),
  jitter: fc.nat(59_999),
  life: fc.option(fc.nat(SPAN_STEPS), { nil: null }), // null: never deleted; 0: zero-length
});

const ids = (xs: { id: string }[], picks: number[]) => [...new Set(picks)].map((i) => xs[i % xs.length]!.id);

const queryArb = fc.record({
  a: fc.integer({ min: -10, max: SPAN_STEPS + 10 }),
  len: fc.integer({ min: 1, max: SPAN_STEPS }),
  fromJitter: fc.nat(STEP - 1),
  groupBy: fc.uniqueArray(fc.constantFrom(...Dimensions), { minLength: 1, maxLength: 3 }),
  filter: fc.record({
    projects: fc.option(fc.array(fc.nat(2), { minLength: 1, maxLength: 2 }), { nil: undefined }),
    instances: fc.option(fc.array(fc.nat(5), { minLength: 1, maxLength: 3 }), { nil: undefined }),
    policies: fc.option(fc.array(fc.nat(1), { minLength: 1, maxLength: 1 }), { nil: undefined }),
    destinations: fc.option(fc.array(fc.nat(2), { minLength: 1, maxLength: 2 }), { nil: undefined }),
    zones: fc.option(fc.array(fc.nat(1), { minLength: 1, maxLength: 1 }), { nil: undefined }),
    exclude: fc.option(fc.array(fc.nat(2), { minLength: 1, maxLength: 1 }), { nil: undefined }),
  }),
});

function toHistory(raw: Arb<typeof backupArb>[]): Hist[] {
  return raw.map((b) => {
    const instance = inv.instances[b.instance]!;
    const completedAt = new Date(T0 + b.start * STEP + b.jitter);
    return {
      backupId: randomUUID(),
      cloudId: inv.cloud.id,
      projectId: instance.project.id,
      instanceId: instance.id,
      zoneId: instance.zone?.id ?? null,
      policyId: b.policy === null ? null : inv.policies[b.policy]!.id,
      destinationId: inv.destinations[b.destination]!.id,
      type: b.full ? 'FULL' : 'INCREMENTAL',
      storedBytes: b.stored,
      frontEndBytes: b.frontEnd,
      transferredBytes: b.transferred,
      completedAt,
      deletedAt: b.life === null ? null : new Date(completedAt.getTime() + b.life * STEP),
    } satisfies Hist;
  });
}

const dimValue = (h: Hist, d: Dimension) =>
  ({ PROJECT: h.projectId, INSTANCE: h.instanceId, ZONE: h.zoneId ?? null, POLICY: h.policyId ?? null, DESTINATION: h.destinationId, CLOUD: h.cloudId })[d];

function matches(h: Hist, f: ReportFilter): boolean {
  const inList = (v: string | null | undefined, l?: string[] | null) => !l || (v != null && l.includes(v));
  return inList(h.projectId, f.projectIds) && inList(h.instanceId, f.instanceIds) && inList(h.policyId, f.policyIds)
    && inList(h.destinationId, f.destinationIds) && inList(h.zoneId, f.zoneIds)
    && !(f.excludeDestinationIds ?? []).includes(h.destinationId);
}

const held = (h: Hist, t: number) => h.completedAt.getTime() < t && (h.deletedAt === null || h.deletedAt.getTime() >= t);

function bruteForce(hist: Hist[], from: number, to: number, groupBy: Dimension[], filter: ReportFilter) {
  const groups = new Map<string, SizeFigures & { byteMs: bigint }>();
  for (const h of hist.filter((x) => matches(x, filter))) {
    const key = groupBy.map((d) => dimValue(h, d) ?? '-').join('/');
    const g = groups.get(key) ?? { stored: 0n, storedAdded: 0n, frontEnd: 0n, transferred: 0n, byteHours: 0n, backups: 0n, byteMs: 0n };
    const c = h.completedAt.getTime();
    const end = h.deletedAt?.getTime() ?? Infinity;
    if (held(h, to)) g.stored += h.storedBytes;
    if (c >= from && c < to) {
      g.storedAdded += h.storedBytes;
      g.frontEnd += h.frontEndBytes;
      g.transferred += h.transferredBytes;
      g.backups += 1n;
    }
    const overlap = Math.min(to, end) - Math.max(from, c);
    if (overlap > 0) g.byteMs += h.storedBytes * BigInt(overlap);
    groups.set(key, g);
  }
  const out = new Map<string, SizeFigures>();
  for (const [k, g] of groups) {
    const { byteMs, ...f } = g;
    f.byteHours = (byteMs + 1_800_000n) / 3_600_000n;
    if (Object.values(f).some((v) => v !== 0n)) out.set(k, f);
  }
  return out;
}

function bruteFrontEnd(hist: Hist[], to: number, groupBy: Dimension[], filter: ReportFilter) {
  const last = new Map<string, Hist>();
  for (const h of hist) {
    if (h.type !== 'FULL' || !held(h, to) || !matches(h, filter)) continue;
    const prev = last.get(h.instanceId);
    if (!prev || prev.completedAt < h.completedAt) last.set(h.instanceId, h);
  }
  const out = new Map<string, bigint>();
  for (const h of last.values()) {
    const key = groupBy.map((d) => dimValue(h, d) ?? '-').join('/');
    out.set(key, (out.get(key) ?? 0n) + h.frontEndBytes);
  }
  return out;
}

async function load(em: EntityManager, hist: Hist[], order: number[]) {
  await em.execute('truncate usage_interval, usage_series, usage_daily, usage_checkpoint, usage_checkpoint_week');
  for (const i of order) await recordBackupCompleted(em, hist[i]!);
  for (const i of order) {
    const h = hist[i]!;
    if (h.deletedAt) await recordBackupDeleted(em, h.backupId, h.deletedAt);
  }
}

function filterOf(q: Arb<typeof queryArb>['filter']): ReportFilter {
  return {
    projectIds: q.projects && ids(inv.projects, q.projects),
    instanceIds: q.instances && ids(inv.instances, q.instances),
    policyIds: q.policies && ids(inv.policies, q.policies),
    destinationIds: q.destinations && ids(inv.destinations, q.destinations),
    zoneIds: q.zones && ids(inv.zones, q.zones),
    excludeDestinationIds: q.exclude && ids(inv.destinations, q.exclude),
  };
}

describe('size reports on random histories', () => {
  it('equal a brute-force computation over the intervals', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(backupArb, { maxLength: 25 }).chain((bs) => fc.tuple(fc.constant(bs), fc.shuffledSubarray([...bs.keys()], { minLength: bs.length }), fc.array(queryArb, { minLength: 1, maxLength: 4 }))),
        async ([raw, order, queries]) => {
          const em = systemFork(orm) as EntityManager;
          const hist = toHistory(raw);
          await load(em, hist, order);
          for (const q of queries) {
            const from = T0 + q.a * STEP + q.fromJitter;
            const to = from + q.len * STEP;
            const filter = filterOf(q.filter);
            const report = await sizeReport(em, { from: new Date(from), to: new Date(to), groupBy: q.groupBy, measure: 'BYTE_HOURS', filter }, { projectIds: null });
            const got = new Map(report.rows.map((r) => [r.keys.map((k) => k.id ?? '-').join('/'), r.figures]));
            expect(got).toEqual(bruteForce(hist, from, to, q.groupBy, filter));
            expect(report.total).toBe(report.rows.reduce((a, r) => a + r.figures.byteHours, 0n));

            const fe = await frontEndCapacity(em, { to: new Date(to), groupBy: q.groupBy, filter }, { projectIds: null });
            expect(new Map(fe.rows.map((r) => [r.keys.map((k) => k.id ?? '-').join('/'), r.value]))).toEqual(bruteFrontEnd(hist, to, q.groupBy, filter));
          }
        },
      ),
      { numRuns: 40 },
    );
  }, 180_000);

  it('keeps the incremental daily rollups equal to a full rebuild', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(backupArb, { minLength: 1, maxLength: 15 }).chain((bs) => fc.tuple(fc.constant(bs), fc.shuffledSubarray([...bs.keys()], { minLength: bs.length }))), async ([raw, order]) => {
        const em = systemFork(orm) as EntityManager;
        await load(em, toHistory(raw), order);
        const now = new Date(T0 + 40 * 86_400_000); // checkpoints a little past the history
        await closeWeeks(em, now);
        const keys = (t: string) => `${t}.cloud_id, ${t}.project_id, ${t}.instance_id, ${t}.zone_id, ${t}.policy_id, ${t}.destination_id`;
        const snapshot = async () => [
          await em.execute(`select s.key, d.day::text, ${keys('d')}, d.stored, d.stored_ms, d.stored_added, d.front_end_added, d.transferred, d.backups
            from usage_daily d join usage_series s on s.id = d.series_id order by 1, 2`),
          await em.execute(`select s.key, c.week::text, ${keys('c')}, c.stored, c.stored_ms, c.stored_added, c.front_end_added, c.transferred, c.backups
            from usage_checkpoint c join usage_series s on s.id = c.series_id order by 1, 2`),
          await em.execute(`select week::text from usage_checkpoint_week order by 1`),
        ];
        const incremental = await snapshot();
        // Rollup rows carry exactly their series' keys (reports group and filter on them).
        for (const t of ['usage_daily', 'usage_checkpoint']) {
          const [bad] = await em.execute(`select count(*)::int as n from ${t} r join usage_series s on s.id = r.series_id
            where (${keys('r')}) is distinct from (${keys('s')})`);
          expect(bad!.n).toBe(0);
        }
        await rebuildDailyRollups(em, now);
        const rebuilt = await snapshot();
        expect(rebuilt[0]).toEqual(incremental[0]);
        // Checkpoints are an accelerator: the weeks materialised depend on the order events
        // arrived in (late events do not create earlier weeks), so compare the weeks both have.
        const weeks = (x: unknown) => new Set((x as { week: string }[]).map((w) => w.week));
        const common = [...weeks(incremental[2])].filter((w) => weeks(rebuilt[2]).has(w));
        expect(common.length).toBeGreaterThan(0);
        const at = (rows: unknown) => (rows as { week: string }[]).filter((r) => common.includes(r.week));
        expect(at(rebuilt[1])).toEqual(at(incremental[1]));
      }),
      { numRuns: 12 },
    );
  }, 180_000);
});
