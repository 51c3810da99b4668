// GET /metrics itself: the bearer token of STRONGBOX_METRICS_TOKEN, GraphQL operations by name
// and outcome over HTTP and over graphql-ws, and OpenStack API errors by kind.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createClient, type Client } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { HttpClient } from '../../src/openstack/http.ts';
import { listen, type RunningServer } from '../../src/server.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { sample } from '../helpers/metrics.ts';

const METRICS_TOKEN = 'metrics-token-for-the-test-0123456789';
let t: TestApp;
let server: RunningServer;
let client: Client;
let token: string;

beforeAll(async () => {
  t = await startTestApp({ STRONGBOX_METRICS_TOKEN: METRICS_TOKEN });
  server = await listen(t.services, '127.0.0.1', 0);
  token = await t.login('ADMIN');
  client = createClient({ url: server.url.replace('http', 'ws'), webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${token}` }, retryAttempts: 0 });
});
afterAll(async () => {
  await client?.dispose();
  await server?.close();
  await t?.close();
});

const scrape = async () => {
  const res = await t.fetch('/metrics', { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
  expect(res.status).toBe(200);
  return res.text();
};

function overSocket(query: string) {
  return new Promise<{ result?: any; error?: any }>((resolve) => {
    let result: any;
    client.subscribe({ query }, { next: (r) => (result = r), error: (error) => resolve({ error }), complete: () => resolve({ result }) });
  });
}

describe('GET /metrics', () => {
  it('asks for the bearer token of STRONGBOX_METRICS_TOKEN when it is set', async () => {
    expect((await t.fetch('/metrics')).status).toBe(401);
    expect((await t.fetch('/metrics', { headers: { authorization: 'Bearer not-the-metrics-token' } })).status).toBe(401);
    // An API token is not the metrics token.
    expect((await t.fetch('/metrics', { headers: { authorization: `Bearer ${token}` } })).status).toBe(401);
    const text = await scrape();
    expect(text).toMatch(/^# TYPE strongbox_backup_read_bytes_total counter$/m);
    expect(text).toMatch(/^# TYPE strongbox_tasks gauge$/m);
    expect(text).toMatch(/^process_cpu_user_seconds_total /m);
  });

  it('counts GraphQL operations by name and outcome with their latency, over HTTP', async () => {
    const before = await scrape();
    expect((await t.gql(token, 'query MetricsViewer { viewer { role } }')).data.viewer.role).toBe('ADMIN');
    const failed = await t.gql(null, 'query MetricsAnonymous { clouds(first: 1) { edges { node { id } } } }');
    expect(failed.errors?.length).toBeGreaterThan(0);
    const invalid = await t.gql(token, 'query MetricsInvalid { noSuchField }');
    expect(invalid.errors?.length).toBeGreaterThan(0);
    const after = await scrape();
    const rise = (name: string, labels: Record<string, string>) => sample(after, name, labels) - sample(before, name, labels);
    const viewer = { operation_name: 'MetricsViewer', operation_type: 'query' };
    expect(rise('strongbox_graphql_operations_total', { ...viewer, outcome: 'ok' })).toBe(1);
    expect(rise('strongbox_graphql_operation_duration_seconds_count', viewer)).toBe(1);
    expect(rise('strongbox_graphql_operations_total', { operation_name: 'MetricsAnonymous', operation_type: 'query', outcome: 'error' })).toBe(1);
    // A refused validation counts once (whatever its number of errors); it is not an executed operation.
    expect(rise('strongbox_graphql_errors_total', { operation_name: 'MetricsInvalid', operation_type: 'query', phase: 'validate' })).toBe(1);
    expect(sample(after, 'strongbox_graphql_operations_total', { operation_name: 'MetricsInvalid', operation_type: 'query', outcome: 'error' })).toBe(0);
  });

  it('counts operations over graphql-ws too (they run through app.getEnveloped)', async () => {
    const before = await scrape();
    const { result, error } = await overSocket('query MetricsOverSocket { viewer { role } }');
    expect(error).toBeUndefined();
    expect(result.data.viewer.role).toBe('ADMIN');
    const after = await scrape();
    const labels = { operation_name: 'MetricsOverSocket', operation_type: 'query' };
    expect(sample(after, 'strongbox_graphql_operations_total', { ...labels, outcome: 'ok' }) - sample(before, 'strongbox_graphql_operations_total', { ...labels, outcome: 'ok' })).toBe(1);
    expect(sample(after, 'strongbox_graphql_operation_duration_seconds_count', labels)).toBe(1);
  });

  it('counts failed OpenStack API calls by service and kind, each attempt', async () => {
    // A peer that answers 404, then 503 twice, then refuses connections.
    const answers = [404, 503, 503];
    const peer: Server = createServer((_req, res) => res.writeHead(answers.shift() ?? 500).end('{"error": {"message": "no"}}'));
    await new Promise<void>((resolve) => peer.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(peer.address() as AddressInfo).port}/v2.1/servers`;
    const http = new HttpClient({ retries: 1, backoffMs: 1 });
    const before = await scrape();
    try {
      await expect(http.request({ service: 'compute', method: 'GET', url })).rejects.toThrow(/HTTP 404/);
      await expect(http.request({ service: 'compute', method: 'GET', url })).rejects.toThrow(/HTTP 503/);
    } finally {
      await new Promise<void>((resolve) => peer.close(() => resolve()));
    }
    await expect(http.request({ service: 'volumev3', method: 'POST', url, json: {} })).rejects.toThrow(/connection failed/);
    const after = await scrape();
    const rise = (labels: Record<string, string>) => sample(after, 'strongbox_openstack_api_errors_total', labels) - sample(before, 'strongbox_openstack_api_errors_total', labels);
    expect(rise({ service: 'compute', kind: 'not_found' })).toBe(1);
    expect(rise({ service: 'compute', kind: 'server_error' })).toBe(2); // the first try and its retry
    expect(rise({ service: 'volumev3', kind: 'connection' })).toBe(1); // a POST is not retried
  });
});
