// Health and metrics endpoints, for load balancers and Prometheus; the API server and a worker's
// small listener answer them with these same handlers.
//   GET /healthz  the process is up (200 "ok").
//   GET /readyz   200 or 503 with {"ready": …, "checks": {"database": "ok" | "failing" | "timeout", …}}:
//                 database reachable, migrations current, job queue answering, not shutting down.
//   GET /metrics  Prometheus text; with STRONGBOX_METRICS_TOKEN set, only with that bearer token.
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { JOB_SCHEMA } from '../engine/queue.ts';
import { bearerToken } from '../auth/viewer.ts';
import { scrape } from '../observability/metrics.ts';
import type { Services } from '../services.ts';

/** A check slower than this counts as failing: a load balancer must get an answer. */
const CHECK_TIMEOUT_MS = 2_000;

type CheckResult = 'ok' | 'failing' | 'timeout' | 'skipped';

async function check(run: () => Promise<boolean>): Promise<CheckResult> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<CheckResult>((resolve) => (timer = setTimeout(() => resolve('timeout'), CHECK_TIMEOUT_MS)));
  try {
    return await Promise.race([run().then((ok): CheckResult => (ok ? 'ok' : 'failing'), (): CheckResult => 'failing'), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The readiness checks, named; no error text leaves (the endpoint is unauthenticated). */
export async function readiness(services: Services): Promise<{ ready: boolean; checks: Record<string, CheckResult> }> {
  const sql = (q: string) => services.orm.em.getConnection().execute(q);
  const database = await check(async () => (await sql('select 1')).length === 1);
  const up = database === 'ok';
  const [migrations, queue] = await Promise.all([
    // Migrations are applied at start; "pending" means this database is behind this code.
    up ? check(async () => (await services.orm.getMigrator().getPendingMigrations()).length === 0) : 'skipped' as const,
    // The job queue's tables (graphile-worker) are installed and answer.
    up ? check(async () => (await sql(`select count(*) from ${JOB_SCHEMA}.jobs where false`)).length === 1) : 'skipped' as const,
  ]);
  const checks: Record<string, CheckResult> = { database, migrations, queue, shutdown: services.shuttingDown ? 'failing' : 'ok' };
  return { ready: Object.values(checks).every((c) => c === 'ok'), checks };
}

export async function readyzEndpoint(services: Services): Promise<Response> {
  const r = await readiness(services);
  return Response.json(r, { status: r.ready ? 200 : 503, headers: { 'cache-control': 'no-store' } });
}

export function healthzEndpoint(): Response {
  return new Response('ok', { headers: { 'content-type': 'text/plain', 'cache-control': 'no-store' } });
}

const digest = (s: string) => createHash('sha256').update(s).digest();

export async function metricsEndpoint(services: Services, request: Request): Promise<Response> {
  const expected = services.config.metricsToken;
  if (expected) {
    const given = bearerToken(request.headers.get('authorization')) ?? '';
    // Constant time: both sides hashed to the same length first.
    if (!timingSafeEqual(digest(given), digest(expected))) {
      return new Response('metrics need the bearer token of STRONGBOX_METRICS_TOKEN\n', { status: 401, headers: { 'www-authenticate': 'Bearer' } });
    }
  }
  const { contentType, body } = await scrape(services);
  return new Response(body, { headers: { 'content-type': contentType, 'cache-control': 'no-store' } });
}

/** The three routes, or undefined for any other path. */
export async function healthRoutes(services: Services, request: Request, pathname: string): Promise<Response | undefined> {
  if (request.method !== 'GET' && request.method !== 'HEAD') return undefined;
  if (pathname === '/healthz') return healthzEndpoint();
  if (pathname === '/readyz') return readyzEndpoint(services);
  if (pathname === '/metrics') return metricsEndpoint(services, request);
  return undefined;
}

export type HealthListener = { url: string; close(): Promise<void> };

/** A process without the API (`worker`): these routes alone on their own port. */
export async function listenHealth(services: Services, host: string, port: number): Promise<HealthListener> {
  const server = createServer(async (req, res) => {
    try {
      const request = new Request(new URL(req.url ?? '/', `http://${host}`), { method: req.method, headers: req.headers as Record<string, string> });
      const response = (await healthRoutes(services, request, new URL(request.url).pathname)) ?? new Response('not found\n', { status: 404 });
      res.writeHead(response.status, Object.fromEntries(response.headers));
      res.end(req.method === 'HEAD' ? undefined : Buffer.from(await response.arrayBuffer()));
    } catch {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    }
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, host, resolve));
  const address = server.address() as AddressInfo;
  return {
    url: `http://${host}:${address.port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
