// The HTTP face: GraphQL (yoga: POST/GET, GraphiQL in a browser, SSE subscriptions) and
// graphql-ws on the same path, plus the OAuth token endpoint and JWKS.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createYoga, type Plugin, type YogaServerInstance } from 'graphql-yoga';
import { GraphQLError } from 'graphql';
import { CloseCode } from 'graphql-ws';
import { WebSocketServer, type WebSocket } from 'ws';
import { useServer } from 'graphql-ws/use/ws';
import { jwksEndpoint, tokenEndpoint } from './auth/oauth.ts';
import { bearerToken, viewerFromToken, type Viewer } from './auth/viewer.ts';
import { reportsCsvEndpoint } from './http/reports-csv.ts';
import { healthRoutes } from './http/health.ts';
import { graphqlMetrics } from './observability/metrics.ts';
import { systemFork } from './db/orm.ts';
import { createContext, type Context } from './graphql/context.ts';
import { schema } from './graphql/schema.ts';
import { limitPlugins } from './graphql/limits.ts';
import { RateLimiter, rateLimited, rateLimitedResponse } from './graphql/rate-limit.ts';
import { auditPlugin } from './graphql/audit-plugin.ts';
import { auditCsvEndpoint } from './http/audit-csv.ts';
import { sharedSubscriptionResults } from './graphql/shared-subscription-results.ts';
import { newRequestId, withRequestId } from './observability/request-context.ts';
import { operationName, requestLogging, yogaLogger } from './observability/request-log.ts';
import { logger } from './observability/logger.ts';
import { graphqlTracing } from './observability/tracing.ts';
import type { Services } from './services.ts';

export const GRAPHQL_PATH = '/graphql';

/**
 * Routes that are not GraphQL, answered before yoga sees the request. The token endpoint and the
 * CSV exports take a token from the caller's rate-limit bucket like a GraphQL operation (the
 * token endpoint from its address's: a guessed secret is an anonymous request).
 */
function authRoutes(services: Services, limiter: RateLimiter): Plugin {
  const limited = async (request: Request, serverContext: unknown, withViewer: boolean) => {
    const viewer = withViewer ? await viewerFromToken(services.tokens, systemFork(services.orm), bearerToken(request.headers.get('authorization'))) : null;
    const retryAfter = limiter.take(viewer, remoteAddress(serverContext as Record<string, unknown>));
    return { viewer, refused: retryAfter === null ? null : rateLimitedResponse(retryAfter) };
  };
  return {
    async onRequest({ request, url, endResponse, serverContext }) {
      const health = await healthRoutes(services, request, url.pathname);
      if (health) return endResponse(health);
      if (url.pathname === '/.well-known/jwks.json') return endResponse(await jwksEndpoint(services));
      const route = url.pathname === '/oauth/token' ? 'token' : url.pathname.startsWith('/reports/') ? 'reports' : url.pathname.startsWith('/audit/') ? 'audit' : null;
      if (!route) return;
      const { viewer, refused } = await limited(request, serverContext, route !== 'token');
      if (refused) endResponse(refused);
      else if (route === 'token') endResponse(await tokenEndpoint(services, request));
      else if (route === 'reports') endResponse(await reportsCsvEndpoint(services, request, url, viewer));
      else endResponse(await auditCsvEndpoint(services, request, url, viewer));
    },
  };
}

export type App = YogaServerInstance<Record<string, unknown>, Context>;

/** The peer of a request served by node:http (yoga's server context carries `req`). */
function remoteAddress(initial: Record<string, unknown>): string | null {
  return (initial.req as { socket?: { remoteAddress?: string } } | undefined)?.socket?.remoteAddress ?? null;
}

/** `limiter`: the process's rate-limit buckets (`listen` shares one with graphql-ws). */
export function createApp(services: Services, limiter = new RateLimiter(services.config.rateLimits)): App {
  return createYoga<Record<string, unknown>, Context>({
    schema,
    graphqlEndpoint: GRAPHQL_PATH,
    landingPage: false,
    graphiql: { title: 'Strongbox' },
    // requestLogging first: the routes answered before GraphQL run under the request's ID too.
    plugins: [requestLogging(), graphqlTracing(), authRoutes(services, limiter), ...graphqlMetrics(), ...limitPlugins(), sharedSubscriptionResults(), auditPlugin()],
    logging: yogaLogger,
    maskedErrors: true,
    // The cost rule depends on the variables, so a validation result cannot be reused.
    parserAndValidationCache: { validationCache: false },
    context: async (initial) => {
      // graphql-ws operations have no Request: they arrive authenticated by `listen`
      // (onConnect/onSubscribe), which puts their viewer in the initial context.
      if (WS_VIEWER in initial) return createContext(services, (initial as Record<typeof WS_VIEWER, Viewer | null>)[WS_VIEWER]);
      const token = bearerToken(initial.request?.headers.get('authorization'));
      const viewer = await viewerFromToken(services.tokens, systemFork(services.orm), token);
      const retryAfter = limiter.take(viewer, remoteAddress(initial));
      if (retryAfter !== null) throw rateLimited(retryAfter);
      return createContext(services, viewer);
    },
  });
}

/**
 * The messages a socket sends within one turn of the event loop leave in one write: the first
 * send corks the TCP socket, the next turn uncorks it (many subscriptions share a socket, and
 * one event reaches them all in the same turn).
 */
function batchWrites(socket: WebSocket): void {
  const tcp = (socket as unknown as { _socket?: { cork(): void; uncork(): void; destroyed: boolean } })._socket;
  if (!tcp) return;
  const send = socket.send.bind(socket);
  let corked = false;
  socket.send = ((...args: Parameters<WebSocket['send']>) => {
    if (!corked && !tcp.destroyed) {
      corked = true;
      tcp.cork();
      setImmediate(() => {
        corked = false;
        tcp.uncork();
      });
    }
    return send(...args);
  }) as WebSocket['send'];
}

export type RunningServer = {
  url: string;
  server: Server;
  /**
   * Stops accepting connections, closes graphql-ws sockets with 1001 Going Away and ends SSE
   * subscription streams (clients reconnect, to another instance), lets in-flight requests
   * finish within `graceMs`, then drops what is left.
   */
  close(graceMs?: number): Promise<void>;
};

/** Where `listen` hands the socket's viewer to yoga's context function. */
const WS_VIEWER = Symbol('strongbox.wsViewer');

/** How often an open socket re-checks its account (disabled, secret rotated, projects changed). */
const REVALIDATE_MS = 30_000;

type SocketAuth = { token: string | null; viewer: Viewer | null; timers: NodeJS.Timeout[] };

function connectionToken(connectionParams: unknown): string | null {
  const header = (connectionParams as Record<string, unknown> | undefined)?.authorization;
  return typeof header === 'string' ? bearerToken(header) : null;
}

export async function listen(services: Services, host: string, port: number): Promise<RunningServer> {
  const limiter = new RateLimiter(services.config.rateLimits);
  const app = createApp(services, limiter);
  const server = createServer(app);
  const wss = new WebSocketServer({ server, path: GRAPHQL_PATH, maxPayload: 1024 * 1024 });
  // Open SSE subscription streams, ended on close (they would otherwise never finish).
  const eventStreams = new Set<ServerResponse>();
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (!req.headers.accept?.includes('text/event-stream')) return;
    eventStreams.add(res);
    // A write racing the end must not crash the process.
    res.on('error', () => {});
    res.once('close', () => eventStreams.delete(res));
  });
  wss.on('connection', batchWrites);
  const resolveViewer = (token: string | null) => viewerFromToken(services.tokens, systemFork(services.orm), token);
  const auth = new WeakMap<object, SocketAuth>();
  const forbid = (socket: WebSocket, reason: string) => {
    if (socket.readyState === socket.OPEN) socket.close(CloseCode.Forbidden, reason);
  };

  const ws = useServer(
    {
      // Each operation runs under its own request ID (see onSubscribe).
      execute: (args: any) => withRequestId(args.rootValue.requestId, () => args.rootValue.execute(args)),
      subscribe: (args: any) => withRequestId(args.rootValue.requestId, () => args.rootValue.subscribe(args)),
      // The socket is authenticated once, here: no valid token → closed with 4403 Forbidden.
      onConnect: async (ctx) => {
        const token = connectionToken(ctx.connectionParams);
        const viewer = await resolveViewer(token);
        if (!viewer) return false;
        const socket = ctx.extra.socket;
        const state: SocketAuth = { token, viewer, timers: [] };
        // Close when the token expires; a client reconnects with a fresh token.
        if (viewer.expiresAt) {
          state.timers.push(setTimeout(() => forbid(socket, 'Forbidden: token expired'), Math.max(0, viewer.expiresAt.getTime() - Date.now())));
        }
        // Revocation also reaches sockets that only listen.
        state.timers.push(setInterval(async () => {
          const current = await resolveViewer(token).catch(() => null);
          if (!current) forbid(socket, 'Forbidden: token revoked');
          else state.viewer = current;
        }, REVALIDATE_MS));
        for (const t of state.timers) t.unref();
        auth.set(ctx, state);
        return true;
      },
      onClose: (ctx) => {
        for (const t of auth.get(ctx)?.timers ?? []) clearTimeout(t);
      },
      onSubscribe: async (ctx, _id, params) => {
        const state = auth.get(ctx);
        // Re-read the account for every operation: a disabled account's socket stops at once.
        const viewer = state ? await resolveViewer(state.token) : null;
        if (!viewer) {
          setImmediate(() => forbid(ctx.extra.socket, 'Forbidden: token revoked'));
          return [new GraphQLError('authentication required', { extensions: { code: 'UNAUTHENTICATED' } })];
        }
        state!.viewer = viewer;
        const retryAfter = limiter.take(viewer);
        if (retryAfter !== null) return [rateLimited(retryAfter, false)];
        const { schema, execute, subscribe, contextFactory, parse, validate } = app.getEnveloped({
          ...ctx, req: ctx.extra.request, socket: ctx.extra.socket, params, [WS_VIEWER]: viewer,
        });
        let document;
        try {
          document = parse(params.query);
        } catch (e) {
          return [e instanceof GraphQLError ? e : new GraphQLError('malformed query')];
        }
        // The same validation rules as HTTP (cost, depth, aliases...).
        const errors = validate(schema, document);
        if (errors.length > 0) return errors;
        const requestId = newRequestId();
        logger.info({ requestId, operation: operationName(document, params.operationName), accountId: viewer.accountId }, 'graphql-ws operation');
        return {
          schema,
          operationName: params.operationName,
          document,
          variableValues: params.variables,
          contextValue: await contextFactory(),
          rootValue: { execute, subscribe, requestId },
        };
      },
    },
    wss,
  );
  await new Promise<void>((resolve) => server.listen(port, host, resolve));
  const address = server.address() as AddressInfo;
  return {
    url: `http://${host}:${address.port}${GRAPHQL_PATH}`,
    server,
    async close(graceMs = 10_000) {
      const sockets = [...wss.clients];
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      await ws.dispose();
      for (const res of eventStreams) res.end();
      server.closeIdleConnections();
      const drop = setTimeout(() => {
        server.closeAllConnections();
        for (const socket of sockets) socket.terminate();
      }, graceMs);
      await closed;
      clearTimeout(drop);
    },
  };
}
