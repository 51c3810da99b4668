// Traces, as a collector receives them: a tiny OTLP/HTTP receiver in this test takes the JSON
// export of a real operation — an inventory sync started through the API and run by a data
// mover against the simulator — and of destination object writes and reads.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDataMover, type RunningDataMover } from '../../src/engine/data-mover.ts';
import { openBackend } from '../../src/engine/destinations/index.ts';
import { inventorySyncExecutor } from '../../src/engine/inventory/executor.ts';
import { inSpan, startTracing, type Tracing } from '../../src/observability/tracing.ts';
import * as G from '../generated/graphql.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { op } from '../helpers/ops.ts';
import { startSimulator, type TestSim } from '../helpers/simulator.ts';
import { taskEnded } from '../helpers/task-ended.ts';

type OtlpSpan = { traceId: string; spanId: string; parentSpanId?: string; name: string; links?: { traceId: string; spanId: string }[]; attributes: { key: string; value: Record<string, unknown> }[] };

let collector: Server;
const spans: OtlpSpan[] = [];
let tracing: Tracing;
let t: TestApp;
let sim: TestSim;
let mover: RunningDataMover;
let dir: string;

const attr = (s: OtlpSpan, key: string) => Object.values(s.attributes.find((a) => a.key === key)?.value ?? {})[0];
const named = (prefix: string) => spans.filter((s) => s.name.startsWith(prefix));

beforeAll(async () => {
  collector = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      let body = Buffer.concat(chunks);
      if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
      if (req.url === '/v1/traces') {
        for (const rs of JSON.parse(body.toString()).resourceSpans ?? []) for (const ss of rs.scopeSpans ?? []) spans.push(...ss.spans);
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
  tracing = startTracing({ otlpEndpoint: `http://127.0.0.1:${(collector.address() as AddressInfo).port}`, serviceName: 'strongbox-test' })!;
  t = await startTestApp();
  sim = await startSimulator();
  dir = mkdtempSync(path.join(os.tmpdir(), 'sb-tracing-'));
  mover = await startDataMover({
    orm: t.services.orm, databaseUrl: t.services.databaseUrl, publisher: t.services.pubsub, name: 'tracing-mover',
    executors: { INVENTORY_SYNC: inventorySyncExecutor(t.services) },
  });
});
afterAll(async () => {
  await mover?.stop();
  await t?.close();
  await sim?.close();
  await tracing?.shutdown();
  collector?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('traces', () => {
  it('link a GraphQL operation, its task, the task phases and the OpenStack calls', async () => {
    const admin = await t.login('ADMIN');
    const cloud = await op(t, admin, G.CreateCloudDocument, {
      input: {
        name: 'sim', keystoneUrl: sim.sim.keystoneUrl, region: 'RegionOne', endpointInterface: 'PUBLIC',
        authDomains: [{ name: 'Default', domainId: 'default', username: sim.seed.admin.username, password: sim.seed.admin.password, defaultProject: 'admin' }],
      },
    });
    const sync = await op(t, admin, G.InventorySyncDocument, { input: { cloudId: cloud.data!.cloudCreate.cloud!.id } });
    expect(sync.errors).toBeUndefined();
    const taskId = Buffer.from(sync.data!.inventorySync.task!.id, 'base64').toString().split(':')[1]!;
    expect((await taskEnded(t.services.orm, taskId)).state).toBe('SUCCEEDED');

    await inSpan('test.destination', {}, async () => {
      const backend = await openBackend(`file://${dir}/repo`);
      await backend.put('data/ab/abcd', Buffer.from('hello'));
      expect((await backend.get('data/ab/abcd')).toString()).toBe('hello');
      await backend.close();
    });
    await tracing.shutdown(); // flushes the batch to the collector

    const [api] = named('graphql.execute inventorySync');
    expect(api).toBeDefined();
    const [task] = named('task INVENTORY_SYNC');
    expect(task).toBeDefined();
    expect(attr(task!, 'strongbox.task_id')).toBe(taskId);
    // The task runs in another trace (it crossed the queue), linked to the operation's span; the
    // request ID ties the two as well.
    expect(task!.traceId).not.toBe(api!.traceId);
    expect(task!.links?.map((l) => [l.traceId, l.spanId])).toEqual([[api!.traceId, api!.spanId]]);
    expect(attr(task!, 'strongbox.request_id')).toBe(attr(api!, 'strongbox.request_id'));
    const phases = spans.filter((s) => s.name.startsWith('task.phase') && s.parentSpanId === task!.spanId);
    expect(phases.length).toBeGreaterThan(1);
    const calls = spans.filter((s) => s.name.startsWith('openstack ') && s.traceId === task!.traceId);
    expect(calls.length).toBeGreaterThan(3);
    for (const c of calls) {
      expect(c.parentSpanId).toBe(task!.spanId);
      expect(attr(c, 'http.response.status_code')).toBeDefined();
      expect(String(attr(c, 'openstack.request_id'))).toMatch(/^req-/);
    }
    expect(calls.map((c) => c.name)).toContain('openstack identity POST');

    const [outer] = named('test.destination');
    const io = spans.filter((s) => s.name.startsWith('destination ') && s.parentSpanId === outer!.spanId).map((s) => s.name);
    expect(io).toEqual(expect.arrayContaining(['destination put', 'destination get']));
  });
});
