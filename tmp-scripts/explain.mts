import { openOrm, systemFork } from '/work/wt-billing/src/db/orm.ts';
import { sizeReportSql } from '/work/wt-billing/billing/size-report.ts';
const orm = await openOrm('postgres://postgres@127.0.0.1/sb_bench_billing_0201f181');
const em = systemFork(orm);
const q = sizeReportSql({ from: new Date('2025-11-27T00:00:00Z'), to: new Date('2026-11-27T00:00:00Z'), groupBy: ['PROJECT'], measure: 'BYTE_HOURS' }, { projectIds: null });
const rows = await em.execute('explain (analyze, buffers) ' + q.sql, q.params);
console.log(rows.map((r: any) => r['QUERY PLAN']).join('\n'));
await orm.close();
