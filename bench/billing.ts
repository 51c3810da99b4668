// Billing benchmark: seeds 500 projects, 10,000 instances and 1,000,000 backups over a year
// (set-based SQL, not the ORM), fills the usage ledger, then times every report (p50/p95 of 20
// runs) and streams the CSV export of all backups while sampling the process's memory.
//   npm run bench:billing                       (embedded PostgreSQL in a temporary folder)
//   DATABASE_URL=postgres://postgres@127.0.0.1/postgres npm run bench:billing
// With DATABASE_URL a scratch database is created on that server and dropped at the end
// (keep it with --keep). Sizes: --instances N --backups-per-instance N --projects N.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { EntityManager } from '@mikro-orm/postgresql';
import pg from 'pg';
import { attribute } from '../billing/attribution.ts';
import { frontEndCapacity } from '../billing/front-end.ts';
import { backfillFromBackups, recordBackupCompleted } from '../billing/ledger.ts';
import { policyPriceTags } from '../billing/policy-prices.ts';
import { createPriceCard, invoicePreview } from '../billing/price-card.ts';
import { sizeReport } from '../billing/size-report.ts';
import { createServiceAccount } from '../src/auth/service-accounts.ts';
import { loadConfig } from '../src/config.ts';
import { startEmbeddedPostgres } from '../src/db/embedded-postgres.ts';
import { openOrm, systemFork } from '../src/db/orm.ts';
import { createApp } from '../src/server.ts';
import { buildServices } from '../src/services.ts';

const { values: opts } = parseArgs({
  options: {
    instances: { type: 'string', default: '10000' },
    projects: { type: 'string', default: '500' },
    'backups-per-instance': { type: 'string', default: '100' },
    runs: { type: 'string', default: '20' },
    keep: { type: 'boolean', default: false },
  },
});
const INSTANCES = Number(opts.instances);
const PROJECTS = Number(opts.projects);
const PER_INSTANCE = Number(opts['backups-per-instance']);
const RUNS = Number(opts.runs);
const YEAR_START = '2025-11-27T00:00:00Z';
const NOW = new Date('2026-11-27T00:00:00Z');

const log = (s: string): void => {
  process.stdout.write(`${s}\n`);
};
const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;

async function server(): Promise<{ url: string; stop(): Promise<void> }> {
  if (process.env.DATABASE_URL) {
    const admin = process.env.DATABASE_URL;
    const name = `sb_bench_billing_${randomBytes(4).toString('hex')}`;
    const c = new pg.Client({ connectionString: admin });
    await c.connect();
    await c.query(`create database ${name}`);
    await c.end();
    const u = new URL(admin);
    u.pathname = `/${name}`;
    return {
      url: u.toString(),
      async stop() {
        if (opts.keep) {
          log(`kept database ${name}`);
          return;
        }
        const d = new pg.Client({ connectionString: admin });
        await d.connect();
        await d.query(`drop database if exists ${name} with (force)`);
        await d.end();
      },
    };
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'strongbox-bench-pg-'));
  const pgServer = await startEmbeddedPostgres(dir, { ephemeral: true });
  return { url: pgServer.url, stop: async () => { await pgServer.stop(); rmSync(dir, { recursive: true, force: true }); } };
}

/** The inventory and a year of backups, set-based. Retention: incrementals 30 days, fulls 90 days. */
async function seed(em: EntityManager) {
  const q = (sql: string) => em.execute(sql);
  await q(`insert into cloud (id, created_at, updated_at, name, keystone_url, region) values (gen_random_uuid(), now(), now(), 'bench', 'http://keystone/v3', 'r1')`);
  await q(`insert into availability_zone (id, created_at, updated_at, cloud_id, name)
           select gen_random_uuid(), now(), now(), c.id, 'zone-' || z from cloud c, generate_series(0, 3) z`);
  await q(`insert into backup_destination (id, created_at, updated_at, name, kind, url, settings)
           select gen_random_uuid(), now(), now(), 'dest-' || d, 'FILE_SYSTEM', 'file:///bench/' || d, '{}' from generate_series(0, 3) d`);
  await q(`insert into policy (id, created_at, updated_at, name, destination_id, schedules, retention, rules)
           select gen_random_uuid(), now(), now(), 'policy-' || lpad(h::text, 2, '0'), (select id from backup_destination where name = 'dest-' || (h % 3)),
                  json_build_array(json_build_object('timesOfDay', json_build_array(lpad(h::text, 2, '0') || ':00'), 'windowMinutes', 60)), '{}', '[]'
           from generate_series(0, 23) h`);
  await q(`insert into project (id, created_at, updated_at, cloud_id, external_id, name)
           select gen_random_uuid(), now(), now(), c.id, 'p' || p, 'project-' || p from cloud c, generate_series(0, ${PROJECTS - 1}) p`);
  await q(`create temporary table bench_instance as
           select i, gen_random_uuid() as id, (select id from project where external_id = 'p' || (i % ${PROJECTS})) as project_id,
                  (select id from availability_zone where name = 'zone-' || (i % 4)) as zone_id,
                  (select id from policy where name = 'policy-' || lpad((i % 24)::text, 2, '0')) as policy_id,
                  (select id from backup_destination where name = 'dest-' || (i % 3)) as destination_id
           from generate_series(0, ${INSTANCES - 1}) i`);
  await q(`insert into instance (id, created_at, updated_at, cloud_id, project_id, zone_id, external_id, name, policy_id, metadata)
           select b.id, now(), now(), c.id, b.project_id, b.zone_id, 'vm' || b.i, 'vm-' || b.i, b.policy_id, '{}' from bench_instance b, cloud c`);
  const free = `(select id from backup_destination where name = 'dest-3')`;
  // Backup j of instance i: every 3.65 days at the policy's hour; a full every 7th; every 10th
  // goes to the free-tier destination; incrementals kept 30 days, fulls 90.
  await q(`insert into backup (id, created_at, updated_at, cloud_id, project_id, instance_id, zone_id, policy_id, destination_id, type, state,
             completed_at, deleted_at, duration_seconds, front_end_bytes, read_bytes, transferred_bytes, stored_bytes, metadata)
           select gen_random_uuid(), t.completed_at, t.completed_at, c.id, b.project_id, b.id, b.zone_id, b.policy_id,
                  case when j % 10 = 9 then ${free} else b.destination_id end,
                  t.type, case when t.deleted_at < '${NOW.toISOString()}' then 'DELETED' else 'AVAILABLE' end,
                  t.completed_at, case when t.deleted_at < '${NOW.toISOString()}' then t.deleted_at end, 600,
                  t.front_end, t.front_end, t.stored + (t.stored / 4), t.stored, '{}'
           from bench_instance b cross join cloud c cross join generate_series(0, ${PER_INSTANCE - 1}) j
           cross join lateral (select
             timestamptz '${YEAR_START}' + (j * interval '1 hour' * ${8760 / PER_INSTANCE}) + ((b.i % 24) * interval '1 hour') + ((b.i * 7 + j * 13) % 60) * interval '1 minute' as completed_at,
             case when j % 7 = 0 then 'FULL' else 'INCREMENTAL' end as type,
             (10 + (b.i % 491)) * 1000000000::bigint as front_end,
             case when j % 7 = 0 then (10 + (b.i % 491)) * 400000000::bigint else (1 + ((b.i + j) % 97)) * 50000000::bigint end as stored
           ) t0
           cross join lateral (select t0.*, t0.completed_at + case when t0.type = 'FULL' then interval '90 days' else interval '30 days' end as deleted_at) t`);
  await q(`drop table bench_instance`);
}

function percentile(xs: number[], p: number) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

/** p95 of the reference query, measured in the same run: reports are also given as a ratio to it. */
let referenceP95 = 0;

async function time(name: string, run: () => Promise<unknown>, detail: (r: any) => string) {
  let last: unknown;
  await run(); // warm-up
  const xs: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = process.hrtime.bigint();
    last = await run();
    xs.push(ms(t0));
  }
  const p95 = percentile(xs, 95);
  const ratio = referenceP95 > 0 ? `  ${(p95 / referenceP95).toFixed(2).padStart(5)}× ref` : '';
  log(`${name.padEnd(58)} p50 ${percentile(xs, 50).toFixed(1).padStart(7)} ms   p95 ${p95.toFixed(1).padStart(7)} ms ${p95 < 300 ? ' ok' : ' SLOW'}${ratio}   ${detail(last)}`);
  return p95;
}

const pg0 = await server();
const orm = await openOrm(pg0.url, { pool: { min: 0, max: 4 } });
try {
  const em = systemFork(orm) as EntityManager;
  log(`seeding ${PROJECTS} projects, ${INSTANCES} instances, ${INSTANCES * PER_INSTANCE} backups over a year…`);
  let t0 = process.hrtime.bigint();
  await seed(em);
  log(`  backups inserted in ${(ms(t0) / 1000).toFixed(1)} s`);
  t0 = process.hrtime.bigint();
  await backfillFromBackups(em);
  await em.execute('vacuum analyze usage_interval');
  await em.execute('vacuum analyze usage_series');
  await em.execute('vacuum analyze usage_daily');
  await em.execute('vacuum analyze usage_checkpoint');
  await em.execute('analyze');
  const [counts] = await em.execute(`select (select count(*) from usage_interval) intervals, (select count(*) from usage_series) series, (select count(*) from usage_daily) daily_rows,
    pg_size_pretty(pg_total_relation_size('usage_interval')) interval_size, pg_size_pretty(pg_total_relation_size('usage_daily')) daily_size`);
  log(`  ledger filled (backfill + rollups) in ${(ms(t0) / 1000).toFixed(1)} s: ${JSON.stringify(counts)}`);

  const scope = { projectIds: null };
  const oneProject = (await em.execute<{ id: string }[]>(`select id from project where external_id = 'p7'`))[0]!.id;
  const freeTier = (await em.execute<{ id: string }[]>(`select id from backup_destination where name = 'dest-3'`))[0]!.id;
  await createPriceCard(em, { name: 'default', storedPerGbMonth: '0.02', frontEndPerTbMonth: '5' });
  await createPriceCard(em, { name: 'free-tier', destinationId: freeTier, storedPerGbMonth: '0', frontEndPerTbMonth: '0' });
  await createPriceCard(em, { name: 'busy-hours', slotFromHour: 22, slotToHour: 2, storedPerGbMonth: '0.03', frontEndPerTbMonth: '8' });
  const year = { from: new Date(YEAR_START), to: NOW };
  const month = { from: new Date('2026-10-01T00:00:00Z'), to: new Date('2026-11-01T00:00:00Z') };
  const rows = (r: any) => `${r.rows.length} rows`;
  const p95s: number[] = [];

  log(`\nreports (${RUNS} runs each, after one warm-up; machine: ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} load, ${os.cpus().length} cores):`);
  // The reference: one plain scan of the ledger (1,000,000 intervals), on the same server and
  // connection pool; a report's ratio to it says how it fares independent of the machine's load.
  referenceP95 = await time('reference: select count(*) from usage_interval', () => em.execute('select count(*) from usage_interval'), () => '');
  p95s.push(await time('sizeReport year, by PROJECT, BYTE_HOURS', () => sizeReport(em, { ...year, groupBy: ['PROJECT'], measure: 'BYTE_HOURS' }, scope), rows));
  p95s.push(await time('sizeReport year, by INSTANCE, STORED', () => sizeReport(em, { ...year, groupBy: ['INSTANCE'], measure: 'STORED' }, scope), rows));
  p95s.push(await time('sizeReport month, by POLICY+DESTINATION, TRANSFERRED', () => sizeReport(em, { ...month, groupBy: ['POLICY', 'DESTINATION'], measure: 'TRANSFERRED' }, scope), rows));
  p95s.push(await time('sizeReport year, by ZONE, excl. free tier, BYTE_HOURS', () => sizeReport(em, { ...year, groupBy: ['ZONE'], measure: 'BYTE_HOURS', filter: { excludeDestinationIds: [freeTier] } }, scope), rows));
  p95s.push(await time('sizeReport mid-day edges, by CLOUD, BYTE_HOURS', () => sizeReport(em, { from: new Date('2026-02-03T13:17:00Z'), to: new Date('2026-09-21T07:45:00Z'), groupBy: ['CLOUD'], measure: 'BYTE_HOURS' }, scope), rows));
  p95s.push(await time('sizeReport year, tenant (1 project), by INSTANCE', () => sizeReport(em, { ...year, groupBy: ['INSTANCE'], measure: 'BYTE_HOURS' }, { projectIds: [oneProject] }), rows));
  p95s.push(await time('frontEndCapacity now, by PROJECT', () => frontEndCapacity(em, { to: NOW, groupBy: ['PROJECT'] }, scope), rows));
  p95s.push(await time('frontEndCapacity mid-year, by POLICY', () => frontEndCapacity(em, { to: new Date('2026-05-15T12:00:00Z'), groupBy: ['POLICY'] }, scope), rows));
  p95s.push(await time('policyPriceTags (24 policies)', () => policyPriceTags(em, { to: NOW }, scope), (r) => `${r.length} policies`));
  p95s.push(await time('invoicePreview (1 project, 1 month)', () => invoicePreview(em, oneProject, '2026-10', NOW), (r) => `${r.lines.length} lines, total ${r.total} ${r.currency}`));

  // Writes: the cost the engine pays per backup completion (a new day row for a series plus one update).
  const [inst] = await em.execute<Record<string, string>[]>(`select i.id, i.project_id, i.zone_id, i.policy_id, c.id as cloud_id, (select id from backup_destination where name = 'dest-0') as destination_id
    from instance i, cloud c where i.external_id = 'vm0'`);
  let k = 0;
  await time('recordBackupCompleted (one backup, in its transaction)', () => recordBackupCompleted(em, {
    backupId: crypto.randomUUID(), cloudId: inst!.cloud_id!, projectId: inst!.project_id!, instanceId: inst!.id!, zoneId: inst!.zone_id, policyId: inst!.policy_id,
    destinationId: inst!.destination_id!, type: 'INCREMENTAL', storedBytes: 1n, frontEndBytes: 1n, transferredBytes: 1n, completedAt: new Date(NOW.getTime() + ++k * 60_000),
  }), () => '');

  // Attribution on 100 synthetic chunk references per instance (1,000,000 by default; pure computation).
  const REFS = 100 * INSTANCES;
  const refs = function* () {
    for (let i = 0; i < REFS; i++) {
      const instance = i % 10_000;
      yield { instanceId: `i${instance}`, projectId: `p${instance % 500}`, chunkId: `c${(i * 7919) % 400_000}`, storedSize: 1_000_000 + ((i * 7919) % 400_000) };
    }
  };
  t0 = process.hrtime.bigint();
  const a = attribute(refs());
  log(`${`attribution, ${REFS} chunk references (once)`.padEnd(58)} ${ms(t0).toFixed(0)} ms: ${a.instances.length} instances, ${a.chunks} chunks, shares sum ${a.instances.reduce((s, x) => s + x.totalBytes, 0n) === a.storedTotal ? '= stored total' : '≠ stored total (BUG)'}`);

  // CSV export of every backup of the year, through the HTTP endpoint, reading the stream.
  const config = loadConfig({ STRONGBOX_DATA_DIR: mkdtempSync(path.join(os.tmpdir(), 'strongbox-bench-')), STRONGBOX_MASTER_KEY: randomBytes(32).toString('base64') });
  const services = buildServices(config, pg0.url, orm, async () => {});
  const app = createApp(services);
  const creds = await createServiceAccount(systemFork(orm) as EntityManager, { name: 'bench-billing', role: 'BILLING' });
  const tokenRes = await app.fetch('http://bench/oauth/token', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ grant_type: 'client_credentials', client_id: creds.clientId, client_secret: creds.clientSecret }) });
  const token = ((await tokenRes.json()) as { access_token: string }).access_token;
  global.gc?.();
  const baseline = process.memoryUsage().rss;
  const inUse = (m: NodeJS.MemoryUsage) => m.heapUsed + m.arrayBuffers;
  const heapBaseline = inUse(process.memoryUsage());
  let peak = baseline;
  let heapPeak = heapBaseline;
  const sample = () => {
    const m = process.memoryUsage();
    peak = Math.max(peak, m.rss);
    heapPeak = Math.max(heapPeak, inUse(m));
  };
  const sampler = setInterval(sample, 20);
  const retained: number[] = [];
  t0 = process.hrtime.bigint();
  const res = await app.fetch(`http://bench/reports/usage.csv?from=${encodeURIComponent(YEAR_START)}&to=${encodeURIComponent(NOW.toISOString())}`, { headers: { authorization: `Bearer ${token}` } });
  let bytes = 0;
  let lines = 0;
  const reader = res.body!.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    bytes += value.length;
    for (let i = value.indexOf(10); i !== -1; i = value.indexOf(10, i + 1)) lines++;
    sample();
    // What the export holds on to (after a full GC), every 32 MiB: flat if it streams.
    if (global.gc && Math.floor(bytes / (32 << 20)) > retained.length) {
      global.gc();
      retained.push(inUse(process.memoryUsage()));
    }
  }
  clearInterval(sampler);
  const mb = (n: number) => (n / 1024 / 1024).toFixed(0);
  log(`\nCSV export of all backups (usage.csv, a year): ${lines - 1} lines, ${mb(bytes)} MiB in ${(ms(t0) / 1000).toFixed(1)} s; RSS ${mb(baseline)} MiB before, peak ${mb(peak)} MiB (+${mb(peak - baseline)} MiB for a ${mb(bytes)} MiB export); JS heap + buffers in use ${mb(heapBaseline)} MiB before, peak ${mb(heapPeak)} MiB (garbage included)`);
  if (retained.length) log(`  retained after a full GC, sampled every 32 MiB of export (${retained.length} samples): min ${mb(Math.min(...retained))} MiB, max ${mb(Math.max(...retained))} MiB, first ${mb(retained[0]!)} MiB, last ${mb(retained.at(-1)!)} MiB`);
  log(`\nslowest report p95: ${Math.max(...p95s).toFixed(1)} ms (target < 300 ms), ${(Math.max(...p95s) / referenceP95).toFixed(2)}× the reference (${referenceP95.toFixed(1)} ms); load now ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
} finally {
  await orm.close();
  await pg0.stop();
}
