import { openOrm, systemFork } from '/work/wt-billing/src/db/orm.ts';
import { sizeReport } from '/work/wt-billing/billing/size-report.ts';
const orm = await openOrm('postgres://postgres@127.0.0.1/sb_bench_billing_0201f181');
const em = systemFork(orm);
for (const [name, input] of [
  ['year by project', { from: new Date('2025-11-27T00:00:00Z'), to: new Date('2026-11-27T00:00:00Z'), groupBy: ['PROJECT'], measure: 'BYTE_HOURS' }],
  ['month by instance', { from: new Date('2026-10-01T00:00:00Z'), to: new Date('2026-11-01T00:00:00Z'), groupBy: ['INSTANCE'], measure: 'STORED' }],
] as const) {
  const xs: number[] = [];
  for (let i = 0; i < 6; i++) { const t = performance.now(); await sizeReport(em as any, input as any, { projectIds: null }); xs.push(performance.now() - t); }
  console.log(name, xs.map((x) => x.toFixed(0)).join(' '));
}
await orm.close();
