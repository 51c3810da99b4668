import { openOrm, systemFork } from '/work/wt-billing/src/db/orm.ts';
import { sizeReport } from '/work/wt-billing/billing/size-report.ts';
import { frontEndCapacity } from '/work/wt-billing/billing/front-end.ts';
const orm = await openOrm('postgres://postgres@127.0.0.1/sb_bench_billing_116c2f59');
const em = systemFork(orm);
const cases: [string, () => Promise<unknown>][] = [
  ['year by project', () => sizeReport(em as any, { from: new Date('2025-11-27T00:00:00Z'), to: new Date('2026-11-27T00:00:00Z'), groupBy: ['PROJECT'], measure: 'BYTE_HOURS' }, { projectIds: null })],
  ['month by policy+dest', () => sizeReport(em as any, { from: new Date('2026-10-01T00:00:00Z'), to: new Date('2026-11-01T00:00:00Z'), groupBy: ['POLICY', 'DESTINATION'], measure: 'TRANSFERRED' }, { projectIds: null })],
  ['month by instance', () => sizeReport(em as any, { from: new Date('2026-10-01T00:00:00Z'), to: new Date('2026-11-01T00:00:00Z'), groupBy: ['INSTANCE'], measure: 'STORED' }, { projectIds: null })],
  ['fe by project', () => frontEndCapacity(em as any, { to: new Date('2026-11-27T00:00:00Z'), groupBy: ['PROJECT'] }, { projectIds: null })],
];
for (const [name, run] of cases) {
  const xs: number[] = [];
  for (let i = 0; i < 5; i++) { const t = performance.now(); await run(); xs.push(performance.now() - t); }
  console.log(name.padEnd(24), xs.map((x) => x.toFixed(0)).join(' '));
}
await orm.close();
