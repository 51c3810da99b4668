// Two API processes on one database: A is the test app (in this process), B is a real
// `strongbox serve` child process. Events published through A, or by an "engine" client with
// its own pub/sub connection, reach subscribers on B over graphql-ws and SSE; each event is
// resolved fresh from the database and only within the subscriber's scope.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { createClient, type Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { Instance, ServiceAccount, Task, type Project } from '../../src/db/entities/index.ts';
import { systemFork } from '../../src/db/orm.ts';
import { Channels, type QuotaAlertEvent, type TaskEvent } from '../../src/events/channels.ts';
import { PgPubSub } from '../../src/events/pubsub.ts';
import { ProgressReporter } from '../../src/engine/tasks/progress.ts';
import { startDataMover } from '../../src/engine/data-mover.ts';
import type { Executors } from '../../src/engine/task-runner.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { gid, seeder } from '../helpers/seed.ts';

type Result = { data?: any; errors?: { message: string; extensions?: { code?: string } }[] };

/** Starts `strongbox serve` on a free port against `databaseUrl`; resolves with its GraphQL URL. */
async function startServeProcess(env: Record<string, string>): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'serve', '--api-only'], {
    cwd: path.resolve(import.meta.dirname, '../..'),
    env: { ...process.env, ...env, STRONGBOX_PORT: '0', STRONGBOX_HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`serve did not start: ${stderr}`)), 60_000);
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /at (http:\/\/\S+\/graphql)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.once("exit", (code, signal) => reject(new Error(`serve exited (${code ?? signal}): ${stderr}`)));
  });
  return { url, child };
}

/** A graphql-ws subscription as an async iterator of results. */
function wsSubscribe(client: Client, query: string, variables: Record<string, unknown> = {}) {
  return client.iterate({ query, variables }) as AsyncIterableIterator<Result>;
}

/** Yoga's SSE transport: POST with `accept: text/event-stream`, results as `data:` lines. */
async function sseSubscribe(url: string, token: string, query: string, variables: Record<string, unknown>) {
  const controller = new AbortController();
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
    signal: controller.signal,
  });
  expect(res.status).toBe(200);
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  const iterator = {
    async next(): Promise<IteratorResult<Result>> {
      for (;;) {
        const end = buffer.indexOf('\n\n');
        if (end >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim()).join('');
          if (data) return { value: JSON.parse(data), done: false };
          continue;
        }
        const chunk = await reader.read();
        if (chunk.done) return { value: undefined, done: true };
        buffer += chunk.value;
      }
    },
    async return(): Promise<IteratorResult<Result>> {
      controller.abort();
      return { value: undefined, done: true };
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}

async function nextWithin<T>(it: AsyncIterator<T>, ms = 8000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no event within ${ms} ms`)), ms)));
  try {
    const r = await Promise.race([it.next(), timeout]);
    if (r.done) throw new Error('subscription ended');
    return r.value;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Subscriptions start asynchronously in B; `probe` publishes a harmless event until the
 * subscriber shows one (so B is LISTENing), then results are read until `match` holds.
 */
async function untilListening(sub: AsyncIterator<Result>, probe: () => Promise<void>): Promise<Result> {
  const deadline = Date.now() + 20_000;
  let pending = sub.next();
  while (Date.now() < deadline) {
    await probe();
    const r = await Promise.race([pending, new Promise<null>((res) => setTimeout(() => res(null), 150))]);
    if (r) {
      if (r.done) throw new Error('subscription ended');
      return r.value;
    }
  }
  throw new Error('subscriber never heard the probe');
}

async function readUntil(sub: AsyncIterator<Result>, match: (r: Result) => boolean): Promise<Result> {
  for (;;) {
    const r = await nextWithin(sub);
    if (match(r)) return r;
  }
}

describe('subscriptions across two API processes', () => {
  let t: TestApp;
  let serve: { url: string; child: ChildProcess };
  let engine: PgPubSub;
  let projectA: Project;
  let projectB: Project;
  let vmA: Instance;
  let vmB: Instance;
  let operator: string;
  let tenantA: string;
  let taskA: Task;
  let taskB: Task;
  const clients: Client[] = [];

  const wsClient = (token: string) => {
    const c = createClient({ url: serve.url.replace('http', 'ws'), webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${token}` }, retryAttempts: 0 });
    clients.push(c);
    return c;
  };
  const stateEvent = (task: Task, extra: Partial<TaskEvent> = {}): TaskEvent => ({
    kind: 'STATE', taskId: task.id, projectId: task.project!.id, state: 'QUEUED', phase: null, bytesDone: '0', bytesTotal: '0', rate: null, eta: null, at: new Date().toISOString(), ...extra,
  });
  const newTask = async (project: Project, instance: Instance) => {
    const em = systemFork(t.services.orm);
    const task = em.create(Task, { type: 'BACKUP', project: project.id, instance: instance.id, cloud: project.cloud.id });
    await em.flush();
    return task;
  };

  beforeAll(async () => {
    const masterKey = randomBytes(32).toString('base64');
    t = await startTestApp({ STRONGBOX_MASTER_KEY: masterKey });
    const s = seeder(t.services.orm);
    const cloud = await s.cloud();
    projectA = await s.project(cloud, 'project-a');
    projectB = await s.project(cloud, 'project-b');
    const dest = await s.destination();
    dest.isDefault = true;
    await s.save(dest);
    [vmA] = await s.instances(projectA, 1, { name: 'vm-a' });
    [vmB] = await s.instances(projectB, 1, { name: 'vm-b' });
    taskA = await newTask(projectA, vmA!);
    taskB = await newTask(projectB, vmB!);
    operator = await t.login('OPERATOR');
    tenantA = await t.login('TENANT', [projectA.id]);
    serve = await startServeProcess({
      DATABASE_URL: t.databaseUrl,
      STRONGBOX_MASTER_KEY: masterKey,
      STRONGBOX_DATA_DIR: mkdtempSync(path.join(os.tmpdir(), 'strongbox-serve-b-')),
    });
    engine = new PgPubSub(t.databaseUrl);
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.dispose()));
    await engine?.close();
    if (serve?.child.exitCode === null) {
      const exited = new Promise((r) => serve.child.once('exit', r));
      serve.child.kill('SIGTERM');
      await exited;
    }
    await t?.close();
  });

  it('a task started through A reaches a graphql-ws taskUpdates subscriber on B, resolved from the database', async () => {
    const sub = wsSubscribe(wsClient(operator), `subscription { taskUpdates { id state type instance { name } } }`);
    await untilListening(sub, () => engine.publish(Channels.task, stateEvent(taskA)));
    const started = await t.gql(operator, `mutation($i: ID!) { startBackup(input: {instanceId: $i}) { task { id } userErrors { code } } }`, { i: gid('Instance', vmB.id) });
    const id = started.data.startBackup.task.id;
    const got = await readUntil(sub, (r) => r.data?.taskUpdates?.id === id);
    expect(got.data.taskUpdates).toEqual({ id, state: 'QUEUED', type: 'BACKUP', instance: { name: 'vm-b' } });

    // A cancel through A is a second event with fresh data.
    await t.gql(operator, `mutation($id: ID!) { cancelTask(input: {taskId: $id}) { userErrors { code } } }`, { id });
    const cancelled = await readUntil(sub, (r) => r.data?.taskUpdates?.id === id);
    expect(cancelled.data.taskUpdates.state).toBe('CANCELLED');
    await sub.return!();
  });

  it('engine progress reaches taskProgress on B, throttled, with rate and ETA, and the row is persisted', async () => {
    const task = await newTask(projectA, vmA);
    const sub = wsSubscribe(
      wsClient(tenantA),
      `subscription($id: ID!) { taskProgress(taskId: $id) { state phase bytesDone bytesTotal progress rate eta task { id phase bytesDone } } }`,
      { id: gid('Task', task.id) },
    );
    let clock = 0;
    const reporter = new ProgressReporter(systemFork(t.services.orm), engine, task.id, projectA.id, { now: () => clock });
    const first = await untilListening(sub, () => reporter.setPhase('snapshot'));
    expect(first.data.taskProgress).toMatchObject({ phase: 'snapshot', task: { id: gid('Task', task.id), phase: 'snapshot' } });

    clock = 1000;
    await reporter.start('export', 10_000_000n);
    // 100 reports, 10 ms apart (1 MB/s): the throttle lets through one per 250 ms.
    for (let i = 1; i <= 100; i++) {
      clock = 1000 + i * 10;
      await reporter.progress(BigInt(i * 10_000));
    }
    expect(reporter.published).toBeLessThan(2 + 10);
    const progress = await readUntil(sub, (r) => r.data?.taskProgress?.bytesDone >= 900_000);
    expect(progress.data.taskProgress.state).toBe('RUNNING');
    expect(progress.data.taskProgress.rate).toBeCloseTo(1_000_000, -3);
    expect(progress.data.taskProgress.eta).toBeGreaterThan(8);
    expect(progress.data.taskProgress.progress).toBeGreaterThan(0.08);

    clock = 3000;
    await reporter.finish('SUCCEEDED');
    const done = await readUntil(sub, (r) => r.data?.taskProgress?.state === 'SUCCEEDED');
    expect(done.data.taskProgress).toMatchObject({ progress: 1, task: { bytesDone: 1_000_000 } });
    const row = await systemFork(t.services.orm).findOneOrFail(Task, task.id);
    expect(row).toMatchObject({ state: 'SUCCEEDED', bytesDone: 1_000_000n, bytesTotal: 10_000_000n, phase: 'export' });
    expect(row.phaseSeconds.export).toBeCloseTo(2, 5);
    expect(row.startedAt).toBeInstanceOf(Date);
    await sub.return!();
  });

  it('a backup run by a real data mover (graphile-worker) reports progress that reaches taskProgress on B', async () => {
    // The "engine": a data mover in this process with its own pub/sub connection, running a
    // BACKUP executor that waits for the test's go.
    let go!: () => void;
    const gate = new Promise<void>((resolve) => (go = resolve));
    const executors: Executors = {
      async BACKUP(ctx) {
        await gate;
        await ctx.phase('export');
        for (let i = 1; i <= 60; i++) {
          ctx.progress({ bytesDone: BigInt(i) * 100_000n, bytesTotal: 10_000_000n });
          await new Promise((r) => setTimeout(r, 20));
        }
        await ctx.phase('store');
      },
    };
    const mover = await startDataMover({ orm: t.services.orm, databaseUrl: t.databaseUrl, executors, publisher: engine, concurrency: 1 });
    try {
      const started = await t.gql(tenantA, `mutation($i: ID!) { startBackup(input: {instanceId: $i}) { task { id } userErrors { code } } }`, { i: gid('Instance', vmA.id) });
      const id = started.data.startBackup.task.id;
      const taskId = decodeGlobalID(id).id;
      const sub = wsSubscribe(
        wsClient(tenantA),
        `subscription($id: ID!) { taskProgress(taskId: $id) { state phase bytesDone bytesTotal progress rate eta task { id state phase } } }`,
        { id },
      );
      const task = await systemFork(t.services.orm).findOneOrFail(Task, taskId);
      await untilListening(sub, () => engine.publish(Channels.task, stateEvent(task, { phase: 'probe' })));
      go();
      const running = await readUntil(sub, (r) => r.data?.taskProgress?.phase === 'export');
      expect(running.data.taskProgress.state).toBe('RUNNING');
      const moving = await readUntil(sub, (r) => r.data?.taskProgress?.rate > 0);
      expect(moving.data.taskProgress.eta).toBeGreaterThan(0);
      expect(moving.data.taskProgress.progress).toBeGreaterThan(0);
      const done = await readUntil(sub, (r) => r.data?.taskProgress?.state === 'SUCCEEDED');
      expect(done.data.taskProgress).toMatchObject({ progress: 1, task: { state: 'SUCCEEDED' } });
      await sub.return!();
      const row = await systemFork(t.services.orm).findOneOrFail(Task, taskId);
      expect(row).toMatchObject({ state: 'SUCCEEDED', bytesTotal: 10_000_000n });
      expect(row.dataMover?.id).toBe(mover.id);
      expect(row.phaseSeconds.export).toBeGreaterThan(0.5);
    } finally {
      await mover.stop();
    }
  });

  it('cancelling a running backup through A stops it on its data mover; B hears CANCELLED', async () => {
    const executors: Executors = {
      async BACKUP(ctx) {
        await ctx.phase('export');
        // Work until told to stop: the runner aborts the signal once cancelRequested is seen.
        await new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)));
      },
    };
    const mover = await startDataMover({ orm: t.services.orm, databaseUrl: t.databaseUrl, executors, publisher: engine, concurrency: 1 });
    try {
      const sub = wsSubscribe(wsClient(operator), `subscription { taskUpdates { id state phase cancelRequested } }`);
      await untilListening(sub, () => engine.publish(Channels.task, stateEvent(taskA)));
      const started = await t.gql(operator, `mutation($i: ID!) { startBackup(input: {instanceId: $i}) { task { id } } }`, { i: gid('Instance', vmA.id) });
      const id = started.data.startBackup.task.id;
      await readUntil(sub, (r) => r.data?.taskUpdates?.id === id && r.data.taskUpdates.phase === 'export');
      const cancel = await t.gql(operator, `mutation($id: ID!) { cancelTask(input: {taskId: $id}) { task { state cancelRequested } userErrors { code } } }`, { id });
      expect(cancel.data.cancelTask).toEqual({ task: { state: 'RUNNING', cancelRequested: true }, userErrors: [] });
      const stopped = await readUntil(sub, (r) => r.data?.taskUpdates?.id === id && r.data.taskUpdates.state === 'CANCELLED');
      expect(stopped.data.taskUpdates.cancelRequested).toBe(true);
      await sub.return!();
    } finally {
      await mover.stop();
    }
  });

  it('shows fresh data on the second event after a database change (no stale loader or identity map)', async () => {
    const sub = wsSubscribe(wsClient(operator), `subscription($id: ID!) { taskProgress(taskId: $id) { task { phase instance { name } project { name } } } }`, { id: gid('Task', taskA.id) });
    const first = await untilListening(sub, () => engine.publish(Channels.task, stateEvent(taskA)));
    expect(first.data.taskProgress.task).toEqual({ phase: null, instance: { name: 'vm-a' }, project: { name: 'project-a' } });
    const em = systemFork(t.services.orm);
    await em.nativeUpdate(Instance, { id: vmA.id }, { name: 'vm-a-renamed' });
    await em.nativeUpdate(Task, { id: taskA.id }, { phase: 'store' });
    await engine.publish(Channels.task, stateEvent(taskA, { phase: 'store' }));
    const second = await readUntil(sub, (r) => r.data?.taskProgress?.task?.phase === 'store');
    expect(second.data.taskProgress.task.instance.name).toBe('vm-a-renamed');
    await sub.return!();
  });

  it("refuses a tenant's subscription to another project's task, and sends it no foreign events", async () => {
    const client = wsClient(tenantA);
    const foreign = wsSubscribe(client, `subscription($id: ID!) { taskProgress(taskId: $id) { state } }`, { id: gid('Task', taskB.id) });
    const refused = await nextWithin(foreign);
    expect(refused.data ?? null).toBeNull();
    expect(refused.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');

    const other = wsSubscribe(client, `subscription($p: ID) { taskUpdates(projectId: $p) { id } }`, { p: gid('Project', projectB.id) });
    expect((await nextWithin(other)).errors?.[0]?.extensions?.code).toBe('NOT_FOUND');

    // taskUpdates without a project: B's events are filtered out, A's come through.
    const mine = wsSubscribe(client, `subscription { taskUpdates { id state project { id } } }`);
    await untilListening(mine, () => engine.publish(Channels.task, stateEvent(taskA)));
    await engine.publish(Channels.task, stateEvent(taskB));
    await engine.publish(Channels.task, stateEvent(taskB, { kind: 'CREATED' }));
    // Event order is kept: once A's marker event (a state change in the row) arrives, B's are past.
    await systemFork(t.services.orm).nativeUpdate(Task, { id: taskA.id }, { state: 'RUNNING' });
    await engine.publish(Channels.task, stateEvent(taskA, { state: 'RUNNING' }));
    const seen: string[] = [];
    for (;;) {
      const r = await nextWithin(mine);
      seen.push(r.data.taskUpdates.project.id);
      if (r.data.taskUpdates.state === 'RUNNING') break;
    }
    await systemFork(t.services.orm).nativeUpdate(Task, { id: taskA.id }, { state: 'QUEUED' });
    expect(new Set(seen)).toEqual(new Set([gid('Project', projectA.id)]));
    await mine.return!();
  });

  it('serves subscriptions over SSE too', async () => {
    const sub = await sseSubscribe(serve.url, operator, `subscription($id: ID!) { taskProgress(taskId: $id) { state phase task { id } } }`, { id: gid('Task', taskB.id) });
    const first = await untilListening(sub, () => engine.publish(Channels.task, stateEvent(taskB, { phase: 'sse' })));
    expect(first.data.taskProgress).toEqual({ state: 'QUEUED', phase: 'sse', task: { id: gid('Task', taskB.id) } });
    await sub.return();
  });

  it('quotaAlerts: a tenant hears only its projects’ alerts; an operator hears all', async () => {
    const alert = (p: Project): QuotaAlertEvent => ({ quotaId: randomUUIDv7(), projectId: p.id, instanceId: null, used: '11', softLimit: '10', at: new Date().toISOString() });
    const tenant = wsSubscribe(wsClient(tenantA), `subscription { quotaAlerts { project { id } used softLimit } }`);
    const op = wsSubscribe(wsClient(operator), `subscription { quotaAlerts { project { id } } }`);
    await untilListening(tenant, () => engine.publish(Channels.quotaAlert, alert(projectA)));
    await untilListening(op, () => engine.publish(Channels.quotaAlert, alert(projectA)));
    await engine.publish(Channels.quotaAlert, alert(projectB));
    await engine.publish(Channels.quotaAlert, { ...alert(projectA), used: '99' });
    const seenOp = await readUntil(op, (r) => r.data.quotaAlerts.project.id === gid('Project', projectB.id));
    expect(seenOp.data.quotaAlerts.project.id).toBe(gid('Project', projectB.id));
    const last = await readUntil(tenant, (r) => r.data.quotaAlerts.used === 99 || r.data.quotaAlerts.project.id !== gid('Project', projectA.id));
    expect(last.data.quotaAlerts).toEqual({ project: { id: gid('Project', projectA.id) }, used: 99, softLimit: 10 });
    await tenant.return!();
    await op.return!();
  });

  it('subscribers of one event share its execution only within one viewer: a disabled account stops, the other keeps receiving', async () => {
    const progress = (bytesDone: string) => stateEvent(taskA, { kind: 'PROGRESS', state: 'RUNNING', phase: 'store', bytesDone, bytesTotal: '100' });
    const query = `subscription($id: ID!) { taskProgress(taskId: $id) { bytesDone task { id project { id } } } }`;
    const operatorToken = await t.login('OPERATOR');
    const tenantToken = await t.login('TENANT', [projectA.id]);
    // Two subscribers per account on one socket: the same selection and variables.
    const operatorSocket = wsClient(operatorToken);
    const tenantSocket = wsClient(tenantToken);
    const subs = [operatorSocket, operatorSocket, tenantSocket, tenantSocket].map((c) => wsSubscribe(c, query, { id: gid('Task', taskA.id) }));
    for (const sub of subs) await untilListening(sub, () => engine.publish(Channels.task, progress('1')));

    await engine.publish(Channels.task, progress('42'));
    for (const sub of subs) {
      const r = await readUntil(sub, (x) => Boolean(x.errors) || x.data?.taskProgress?.bytesDone === 42);
      expect(r.data?.taskProgress).toEqual({ bytesDone: 42, task: { id: gid('Task', taskA.id), project: { id: gid('Project', projectA.id) } } });
    }

    const claims = JSON.parse(Buffer.from(tenantToken.split('.')[1]!, 'base64url').toString());
    await systemFork(t.services.orm).nativeUpdate(ServiceAccount, { id: claims.sub }, { enabled: false });
    await engine.publish(Channels.task, progress('77'));
    for (const sub of subs.slice(2)) expect((await readUntil(sub, (x) => Boolean(x.errors))).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    for (const sub of subs.slice(0, 2)) expect((await readUntil(sub, (x) => x.data?.taskProgress?.bytesDone === 77)).errors).toBeUndefined();
  });

  it('ends a subscription with an error once its account is disabled', async () => {
    const token = await t.login('OPERATOR');
    const sub = wsSubscribe(wsClient(token), `subscription { taskUpdates { id } }`);
    await untilListening(sub, () => engine.publish(Channels.task, stateEvent(taskA)));
    const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString());
    await systemFork(t.services.orm).nativeUpdate(ServiceAccount, { id: claims.sub }, { enabled: false });
    await engine.publish(Channels.task, stateEvent(taskA));
    const r = await readUntil(sub, (x) => Boolean(x.errors));
    expect(r.errors?.[0]?.extensions?.code).toBe("UNAUTHENTICATED");
    expect(decodeGlobalID(gid('Task', taskA.id)).id).toBe(taskA.id);
  });
});

function randomUUIDv7() {
  // Any UUID does: the alert's quota need not exist (the field is nullable).
  return '0192f3c4-0000-7000-8000-000000000000';
}
