// Task API benchmark (issue 5, "Measured, in benchmarks"), against one real API process
// (`strongbox serve --api-only`, a child process on a loopback port) and PostgreSQL
// (DATABASE_URL, or an embedded one; a scratch database either way, dropped at the end):
//   floor  raw pub/sub round trip: NOTIFY → LISTEN in this process, no GraphQL
//   (a)    1,000 graphql-ws `taskProgress` subscribers (by default 50 tasks × 20) while the tasks report
//          progress through ProgressReporter on a separate "engine" pub/sub connection; latency
//          is the subscriber's receipt time minus the event's `at` (set just before NOTIFY).
//          Twice: a few sockets carrying many subscriptions, then one socket per subscriber.
//   (b)    200 concurrent `startBackup` calls against a hard COUNT quota of 50.
// Target: p99 delivery < 100 ms. Exits 1 only when a correctness check fails (admissions ≠ N).
//   npm run bench:tasks [-- --seconds 10 --quota 50 --tasks 50 --subscribers-per-task 20 --pooled-only]
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { encodeGlobalID } from '@pothos/plugin-relay';
import { createClient, type Client } from 'graphql-ws';
import pg from 'pg';
import WebSocket from 'ws';
import { createServiceAccount } from '../src/auth/service-accounts.ts';
import { BackupDestination, Cloud, Instance, Project, Quota, Task, Volume } from '../src/db/entities/index.ts';
import { startEmbeddedPostgres } from '../src/db/embedded-postgres.ts';
import { openOrm, systemFork, type Orm } from '../src/db/orm.ts';
import { ProgressReporter } from '../src/engine/tasks/progress.ts';
import { PgPubSub } from '../src/events/pubsub.ts';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const TASKS = arg('tasks', 50);
const SUBSCRIBERS_PER_TASK = arg('subscribers-per-task', 20);
const POOLED_SOCKETS = 10;
const SECONDS = arg('seconds', 10);
const QUOTA = arg('quota', 50);
const CALLS = 200;
const FLOOR_ROUND_TRIPS = 500;
/** How long deliveries of the window's events are awaited after it; later ones count as lost. */
const DRAIN_MS = 60_000;
/** The whole run is bounded: past this, everything is torn down and the run fails. */
const WATCHDOG_MS = 10 * 60_000;

const root = path.resolve(import.meta.dirname, '..');
const dir = mkdtempSync(path.join(os.tmpdir(), 'sb-bench-tasks-'));
chmodSync(dir, 0o755); // embedded PostgreSQL runs as the postgres user
const cleanups: (() => Promise<void>)[] = [async () => rmSync(dir, { recursive: true, force: true })];
const log = (line: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${line}`);

type Stats = { n: number; p50: number; p99: number; max: number };
function stats(values: number[]): Stats {
  const s = [...values].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] ?? NaN;
  return { n: s.length, p50: at(0.5), p99: at(0.99), max: s[s.length - 1] ?? NaN };
}
const ms = (v: number) => (v === Infinity ? 'lost' : Number.isFinite(v) ? v.toFixed(1) : '–');
const ratio = (a: number, b: number) => (Number.isFinite(a) && b > 0 ? `${(a / b).toFixed(0)}×` : '–');
const sleep = (t: number) => new Promise((r) => setTimeout(r, t));

async function withTimeout<T>(what: string, limitMs: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer within ${limitMs} ms`)), limitMs)));
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** `strongbox serve --api-only` on a free loopback port; resolves with its GraphQL URL. */
async function startApi(databaseUrl: string, masterKey: string): Promise<{ url: string; child: ChildProcess }> {
  // BENCH_API_NODE_ARGS: extra node flags for the API process, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
  const nodeArgs = process.env.BENCH_API_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', 'src/main.ts', 'serve', '--api-only'], {
    cwd: root,
    env: {
      ...process.env, DATABASE_URL: databaseUrl, STRONGBOX_MASTER_KEY: masterKey, STRONGBOX_DATA_DIR: path.join(dir, 'api'),
      STRONGBOX_HOST: '127.0.0.1', STRONGBOX_PORT: '0',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  cleanups.unshift(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const url = await withTimeout('API start', 90_000, new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /at (http:\/\/\S+\/graphql)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code, signal) => reject(new Error(`API exited (${code ?? signal}): ${stderr}`)));
  }));
  return { url, child };
}

/** The CPU time of a process so far (Linux /proc), to show where the work went. */
async function cpuSeconds(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in clock ticks (100/s)
}

type Seed = { tasks: { id: string; projectId: string }[]; quotaInstances: string[]; operator: { clientId: string; clientSecret: string } };

async function seed(orm: Orm): Promise<Seed> {
  const em = systemFork(orm);
  const cloud = em.create(Cloud, { name: 'bench', keystoneUrl: 'https://keystone.example/v3', region: 'RegionOne' });
  const progressProject = em.create(Project, { cloud, externalId: 'ext-progress', name: 'progress' });
  const quotaProject = em.create(Project, { cloud, externalId: 'ext-quota', name: 'quota' });
  em.create(BackupDestination, { name: 'default', kind: 'FILE_SYSTEM', url: 'file:///srv/backups', visibility: 'ALL_PROJECTS', isDefault: true });
  const instance = (project: Project, i: number) => {
    const vm = em.create(Instance, { cloud, project, externalId: `srv-${project.name}-${i}`, name: `vm-${project.name}-${i}`, present: true });
    em.create(Volume, { cloud, project, instance: vm, externalId: `vol-${project.name}-${i}`, name: `root-${i}`, kind: 'NOVA', sizeBytes: 1n << 30n, bootIndex: 0 });
    return vm;
  };
  const tasks = Array.from({ length: TASKS }, (_, i) => em.create(Task, { type: 'BACKUP', cloud, project: progressProject, instance: instance(progressProject, i) }));
  const quotaInstances = Array.from({ length: CALLS }, (_, i) => instance(quotaProject, i));
  const quota = em.create(Quota, { name: 'bench-hard', action: 'BACKUP', scope: 'PROJECT', measure: 'COUNT', windowSeconds: 3600, hardLimit: BigInt(QUOTA) });
  quota.projects.add(quotaProject);
  await em.flush();
  const creds = await createServiceAccount(systemFork(orm), { name: 'bench-operator', role: 'OPERATOR' });
  return {
    tasks: tasks.map((t) => ({ id: t.id, projectId: progressProject.id })),
    quotaInstances: quotaInstances.map((v) => v.id),
    operator: { clientId: creds.clientId, clientSecret: creds.clientSecret },
  };
}

async function token(apiUrl: string, creds: Seed['operator']): Promise<string> {
  const res = await fetch(new URL('/oauth/token', apiUrl), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: creds.clientId, client_secret: creds.clientSecret }),
  });
  if (res.status !== 200) throw new Error(`token request failed: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { access_token: string }).access_token;
}

/** NOTIFY → LISTEN round trips, one at a time, on a pub/sub of its own (the floor). */
async function floor(databaseUrl: string): Promise<Stats> {
  const pubsub = new PgPubSub(databaseUrl);
  try {
    const events = await pubsub.subscribe<{ i: number }>('sb_bench_floor');
    const samples: number[] = [];
    for (let i = 0; i < FLOOR_ROUND_TRIPS; i++) {
      const t0 = performance.now();
      await pubsub.publish('sb_bench_floor', { i });
      const r = await withTimeout('floor round trip', 10_000, events.next());
      if (r.done || r.value.i !== i) throw new Error('floor: lost or reordered event');
      samples.push(performance.now() - t0);
    }
    await events.return?.();
    return stats(samples);
  } finally {
    await pubsub.close();
  }
}

const PROGRESS = `subscription($taskId: ID!) { taskProgress(taskId: $taskId) { state phase bytesDone bytesTotal progress rate eta at } }`;

type ProgressResult = {
  label: string;
  sockets: number;
  subscribers: number;
  ready: number;
  readySeconds: number;
  published: number;
  expected: number;
  delivered: number;
  errors: number;
  latency: Stats;
  /** Over the deliveries that came only. */
  deliveredLatency: Stats;
  /** The window, in seconds. */
  seconds: number;
  /** From the window's start to the receipt of its last delivered event. */
  busySeconds: number;
  apiCpuSeconds: number;
};

/**
 * TASKS × SUBSCRIBERS_PER_TASK subscribers over `sockets` graphql-ws sockets; once every one has heard a probe, the
 * ProgressReporters run for SECONDS on the engine's pub/sub. Counts the events published in
 * that window and their deliveries (a short drain after it).
 */
async function progressRun(label: string, sockets: number, apiUrl: string, accessToken: string, orm: Orm, engine: PgPubSub, s: Seed, apiPid: number): Promise<ProgressResult> {
  const clients: Client[] = [];
  const unsubscribes: (() => void)[] = [];
  try {
    for (let i = 0; i < sockets; i++) {
      clients.push(createClient({
        url: apiUrl.replace(/^http/, 'ws'), webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${accessToken}` },
        retryAttempts: 0, lazy: true, keepAlive: 0,
      }));
    }
    const subscribers = TASKS * SUBSCRIBERS_PER_TASK;
    const heard = new Uint8Array(subscribers);
    let measuring = false;
    let windowStart = 0;
    let windowEnd = Infinity;
    const latencies: number[] = [];
    let errors = 0;
    let firstError = '';
    let lastReceipt = 0;
    let lastInWindow = 0;
    /** Waits until no result has arrived for `quietMs` (bounded by `limitMs`). */
    const settle = async (quietMs: number, limitMs: number, done: () => boolean = () => false) => {
      const limit = Date.now() + limitMs;
      while (Date.now() < limit && !done() && Date.now() - Math.max(lastReceipt, lastInWindow) < quietMs) await sleep(100);
      while (Date.now() < limit && !done() && Date.now() - lastReceipt < quietMs) await sleep(100);
    };

    const subscribeT0 = performance.now();
    for (let k = 0; k < subscribers; k++) {
      const task = s.tasks[k % TASKS]!;
      const client = clients[k % sockets]!;
      unsubscribes.push(client.subscribe<{ taskProgress: { at: string } }>(
        { query: PROGRESS, variables: { taskId: encodeGlobalID('Task', task.id) } },
        {
          next: (r) => {
            const received = Date.now();
            if (r.errors?.length || !r.data) {
              errors++;
              firstError ||= JSON.stringify(r.errors);
              return;
            }
            heard[k] = 1;
            lastReceipt = received;
            const at = Date.parse(r.data.taskProgress.at);
            if (measuring && at >= windowStart && at <= windowEnd) {
              latencies.push(received - at);
              lastInWindow = received;
            }
          },
          error: (e) => {
            errors++;
            firstError ||= e instanceof Error ? e.message : String((e as { reason?: string }).reason ?? e);
          },
          complete: () => {},
        },
      ));
      // Connection bursts stay modest: the sockets are opened in groups of 100.
      if (sockets > POOLED_SOCKETS && k % 100 === 99) await sleep(200);
    }

    // Probes (STATE events on the real publish path) until every subscriber has heard one:
    // subscriptions start asynchronously on the server, and only then LISTEN.
    const em = () => systemFork(orm);
    const reporters = s.tasks.map((t) => new ProgressReporter(em(), engine, t.id, t.projectId));
    const total = 100n << 30n;
    const probeDeadline = Date.now() + 120_000;
    let ready = 0;
    let started = false;
    const deaf = (i: number) => heard.some((h, k) => h === 0 && k % TASKS === i);
    while (Date.now() < probeDeadline) {
      // Probe only the tasks with a subscriber that has not heard yet, and let the API catch
      // up in between (every probe costs it one resolution per subscriber).
      if (!started) await Promise.all(reporters.map((r) => r.start('export', total)));
      else await Promise.all(reporters.filter((_, i) => deaf(i)).map((r) => r.setPhase('export')));
      started = true;
      await sleep(1000);
      await settle(500, 10_000);
      ready = heard.reduce((a, b) => a + b, 0);
      if (ready === subscribers || errors > 0) break;
    }
    const readySeconds = (performance.now() - subscribeT0) / 1000;
    await settle(1000, 30_000); // no probe backlog left when the window opens
    if (ready < subscribers) log(`${label}: only ${ready}/${subscribers} subscribers ready${firstError ? ` (first error: ${firstError})` : ''}`);

    // The measured window: each task reports bytes every 20 ms; the reporter publishes at
    // most every 250 ms (its default), i.e. ~4 events/s/task.
    const cpu0 = await cpuSeconds(apiPid);
    const published0 = reporters.reduce((a, r) => a + r.published, 0);
    windowStart = Date.now();
    measuring = true;
    const endAt = performance.now() + SECONDS * 1000;
    await Promise.all(reporters.map(async (r, i) => {
      let done = 0n;
      await sleep((i * 250) / TASKS); // spread the tasks' publish instants
      while (performance.now() < endAt) {
        done += 64n << 20n;
        await r.progress(done);
        await sleep(20);
      }
    }));
    windowEnd = Date.now();
    const published = reporters.reduce((a, r) => a + r.published, 0) - published0;
    const expected = published * SUBSCRIBERS_PER_TASK;
    // Drain: the window's events still on their way (a backlog when the API falls behind),
    // until all are in, or nothing came for 5 s, or DRAIN_MS passed.
    await settle(5000, DRAIN_MS, () => latencies.length >= expected);
    const apiCpuSeconds = (await cpuSeconds(apiPid)) - cpu0;
    const busySeconds = (Math.max(lastInWindow, windowEnd) - windowStart) / 1000;
    measuring = false;
    await Promise.all(reporters.map((r) => r.finish('SUCCEEDED')));
    return {
      label, sockets, subscribers, ready, readySeconds, published, expected, delivered: latencies.length,
      // Deliveries that never came (dropped by a bounded buffer, or later than the drain) count
      // as infinitely late, so the percentiles are not flattered by losses.
      errors, deliveredLatency: stats(latencies), latency: stats([...latencies, ...Array<number>(Math.max(0, expected - latencies.length)).fill(Infinity)]), seconds: (windowEnd - windowStart) / 1000, busySeconds, apiCpuSeconds,
    };
  } finally {
    for (const u of unsubscribes) u();
    await Promise.all(clients.map((c) => c.dispose()));
  }
}

const START_BACKUP = `mutation($input: StartBackupInput!) { startBackup(input: $input) { task { id } userErrors { code message } } }`;

type QuotaResult = { admitted: number; refused: number; failed: number; rows: number; latency: Stats; seconds: number };

async function quotaRun(apiUrl: string, accessToken: string, orm: Orm, s: Seed): Promise<QuotaResult> {
  const t0 = performance.now();
  const outcomes = await Promise.all(s.quotaInstances.map(async (instanceId) => {
    const c0 = performance.now();
    try {
      const res = await fetch(apiUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json', authorization: `Bearer ${accessToken}` },
        body: JSON.stringify({ query: START_BACKUP, variables: { input: { instanceId: encodeGlobalID('Instance', instanceId), type: 'FULL' } } }),
        signal: AbortSignal.timeout(120_000),
      });
      const body = (await res.json()) as { data?: { startBackup: { task: { id: string } | null; userErrors: { code: string }[] } } };
      const p = body.data?.startBackup;
      const kind = p?.task ? 'admitted' : p?.userErrors[0]?.code === 'QUOTA_EXCEEDED' ? 'refused' : 'failed';
      return { kind, ms: performance.now() - c0 };
    } catch {
      return { kind: 'failed', ms: performance.now() - c0 };
    }
  }));
  const seconds = (performance.now() - t0) / 1000;
  const quotaProject = await systemFork(orm).findOneOrFail(Project, { name: 'quota' });
  const rows = await systemFork(orm).count(Task, { project: quotaProject.id });
  const count = (k: string) => outcomes.filter((o) => o.kind === k).length;
  return { admitted: count('admitted'), refused: count('refused'), failed: count('failed'), rows, latency: stats(outcomes.map((o) => o.ms)), seconds };
}

const watchdog = setTimeout(() => {
  console.error(`bench:tasks did not finish within ${WATCHDOG_MS / 1000} s; tearing down`);
  void teardown().finally(() => process.exit(1));
}, WATCHDOG_MS);
watchdog.unref();

let tornDown = false;
async function teardown() {
  if (tornDown) return;
  tornDown = true;
  for (const c of cleanups) await c().catch((e) => console.error(e));
}

let failed = false;
try {
  log(`start (${os.cpus().length} cores, load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')})`);
  let adminUrl = process.env.DATABASE_URL;
  if (!adminUrl) {
    const embedded = await startEmbeddedPostgres(path.join(dir, 'pg'), { ephemeral: true });
    cleanups.unshift(() => embedded.stop());
    adminUrl = embedded.url;
  }
  const dbName = `sb_bench_tasks_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`create database ${dbName}`);
  cleanups.unshift(async () => {
    await admin.query(`drop database if exists ${dbName} with (force)`);
    await admin.end();
  });
  const url = new URL(adminUrl);
  url.pathname = `/${dbName}`;
  const databaseUrl = url.toString();
  const orm = await openOrm(databaseUrl);
  cleanups.unshift(() => orm.close());
  const s = await seed(orm);
  log(`database ${dbName} seeded: ${TASKS} tasks, ${CALLS} instances under a hard quota of ${QUOTA}`);

  const api = await startApi(databaseUrl, randomBytes(32).toString('base64'));
  log(`API process ${api.child.pid} at ${api.url}`);
  const accessToken = await token(api.url, s.operator);
  const engine = new PgPubSub(databaseUrl, { onError: (e) => log(`engine pub/sub: ${e.message}`) });
  cleanups.unshift(() => engine.close());

  const floorStats = await floor(databaseUrl);
  log(`floor: ${FLOOR_ROUND_TRIPS} NOTIFY → LISTEN round trips, p50 ${ms(floorStats.p50)} ms`);

  const runs: ProgressResult[] = [];
  const variants = [['pooled', POOLED_SOCKETS], ['socket each', TASKS * SUBSCRIBERS_PER_TASK]] as const;
  for (const [label, sockets] of variants.filter(([label]) => !process.argv.includes('--pooled-only') || label === 'pooled')) {
    log(`(a) ${label}: ${TASKS * SUBSCRIBERS_PER_TASK} subscribers on ${sockets} sockets, ${SECONDS} s of progress`);
    try {
      runs.push(await progressRun(label, sockets, api.url, accessToken, orm, engine, s, api.child.pid!));
    } catch (e) {
      log(`(a) ${label} failed: ${e instanceof Error ? e.message : e}`);
      failed = true;
    }
  }

  log(`(b) ${CALLS} concurrent startBackup calls, hard quota ${QUOTA}`);
  const q = await quotaRun(api.url, accessToken, orm, s);

  const load = os.loadavg().map((l) => l.toFixed(1)).join(' ');
  console.log(`\nbench:tasks — ${os.cpus().length} cores, shared machine, load ${load} (1/5/15 min), one API process`);
  console.log(`\nfloor: raw pub/sub round trip (NOTIFY → LISTEN, in-process, no GraphQL), ${floorStats.n} sequential`);
  console.log(`  p50 ${ms(floorStats.p50)} ms   p99 ${ms(floorStats.p99)} ms   max ${ms(floorStats.max)} ms`);
  console.log(`\n(a) taskProgress over graphql-ws: ${TASKS} tasks × ${SUBSCRIBERS_PER_TASK} subscribers, ProgressReporter on a separate engine connection`);
  const head = ['variant', 'sockets', 'ready', 'ready s', 'window s', 'published', 'delivered/expected', 'delivered/s', 'p50 ms', 'p99 ms', 'p50/floor', 'p99/floor', 'delivered only: p50', 'p99', 'max', 'API CPU', 'p99<100'];
  const rows = runs.map((r) => [
    r.label, String(r.sockets), `${r.ready}/${r.subscribers}`, r.readySeconds.toFixed(1), r.seconds.toFixed(1), String(r.published),
    `${r.delivered}/${r.expected}`, (r.delivered / r.busySeconds).toFixed(0), ms(r.latency.p50), ms(r.latency.p99),
    ratio(r.latency.p50, floorStats.p50), ratio(r.latency.p99, floorStats.p99), ms(r.deliveredLatency.p50), ms(r.deliveredLatency.p99), ms(r.deliveredLatency.max),
    `${r.apiCpuSeconds.toFixed(1)} s`, r.latency.p99 < 100 ? 'yes' : 'NO',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const r of [head, ...rows]) console.log('  ' + r.map((c, i) => c.padEnd(widths[i]!)).join('  '));
  for (const r of runs) if (r.errors) console.log(`  ${r.label}: ${r.errors} subscription errors`);
  console.log('  delivered/s = deliveries of the window\'s events / (window start → last such delivery); API CPU = CPU seconds of the API process over window + drain;');
  console.log(`  latency = receipt in this process − the event's \`at\` (set by ProgressReporter just before NOTIFY); deliveries not in within ${DRAIN_MS / 1000} s of the window's end (dropped by the bounded buffers, or later) count as lost, i.e. infinitely late, in the percentiles`);
  console.log(`\n(b) ${CALLS} concurrent startBackup calls (HTTP), hard quota ${QUOTA} (PROJECT, COUNT)`);
  console.log(`  admitted ${q.admitted}   refused QUOTA_EXCEEDED ${q.refused}   other failures ${q.failed}   task rows ${q.rows}   exact: ${q.admitted === QUOTA && q.rows === QUOTA ? 'yes' : 'NO'}`);
  console.log(`  latency p50 ${ms(q.latency.p50)} ms   p99 ${ms(q.latency.p99)} ms   max ${ms(q.latency.max)} ms   all ${CALLS} in ${q.seconds.toFixed(2)} s`);
  if (q.admitted !== QUOTA || q.rows !== QUOTA || q.failed > 0) failed = true;
} catch (e) {
  console.error(e);
  failed = true;
} finally {
  await teardown();
  clearTimeout(watchdog);
}
process.exit(failed ? 1 : 0);
