import { openOrm, systemFork } from '/work/wt-billing/src/db/orm.ts';
import { sizeReportSql } from '/work/wt-billing/billing/size-report.ts';
const orm = await openOrm('postgres://postgres@127.0.0.1/sb_bench_billing_116c2f59');
const em = systemFork(orm);
const q = sizeReportSql({ from: new Date('2026-10-01T00:00:00Z'), to: new Date('2026-11-01T00:00:00Z'), groupBy: ['POLICY','DESTINATION'], measure: 'TRANSFERRED' }, { projectIds: null });
const rows = await em.execute('explain (analyze, buffers) ' + q.sql, q.params);
console.log(rows.map((r: any) => r['QUERY PLAN']).join('\n'));
await orm.close();
