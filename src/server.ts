// The HTTP face: GraphQL (yoga: POST/GET, GraphiQL in a browser, SSE subscriptions) and
// graphql-ws on the same path, plus the OAuth token endpoint and JWKS.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createYoga, type Plugin, type YogaServerInstance } from 'graphql-yoga';
import { WebSocketServer } from 'ws';
import { useServer } from 'graphql-ws/use/ws';
import { jwksEndpoint, tokenEndpoint } from './auth/oauth.ts';
import { bearerToken, viewerFromToken } from './auth/viewer.ts';
import { reportsCsvEndpoint } from './http/reports-csv.ts';
import { systemFork } from './db/orm.ts';
import { createContext, type Context } from './graphql/context.ts';
import { schema } from './graphql/schema.ts';
import { limitPlugins } from './graphql/limits.ts';
import type { Services } from './services.ts';

export const GRAPHQL_PATH = '/graphql';

/** Routes that are not GraphQL, answered before yoga sees the request. */
function authRoutes(services: Services): Plugin {
  return {
    async onRequest({ request, url, endResponse }) {
      if (url.pathname === '/oauth/token') endResponse(await tokenEndpoint(services, request));
      else if (url.pathname === '/.well-known/jwks.json') endResponse(await jwksEndpoint(services));
      else if (url.pathname === '/healthz') endResponse(new Response('ok'));
      else if (url.pathname.startsWith('/reports/')) endResponse(await reportsCsvEndpoint(services, request, url));
    },
  };
}

export type App = YogaServerInstance<Record<string, unknown>, Context>;

export function createApp(services: Services): App {
  return createYoga<Record<string, unknown>, Context>({
    schema,
    graphqlEndpoint: GRAPHQL_PATH,
    landingPage: false,
    graphiql: { title: 'Strongbox' },
    plugins: [authRoutes(services), ...limitPlugins()],
    maskedErrors: true,
    // The cost rule depends on the variables, so a validation result cannot be reused.
    parserAndValidationCache: { validationCache: false },
    context: async ({ request }) => {
      // graphql-ws operations have no Request: `listen` puts their viewer in the context.
      const token = bearerToken(request?.headers.get('authorization'));
      const viewer = await viewerFromToken(services.tokens, systemFork(services.orm), token);
      return createContext(services, viewer);
    },
  });
}

export type RunningServer = { url: string; server: Server; close(): Promise<void> };

export async function listen(services: Services, host: string, port: number): Promise<RunningServer> {
  const app = createApp(services);
  const server = createServer(app);
  const wss = new WebSocketServer({ server, path: GRAPHQL_PATH, maxPayload: 1024 * 1024 });
  const ws = useServer(
    {
      execute: (args: any) => args.rootValue.execute(args),
      subscribe: (args: any) => args.rootValue.subscribe(args),
      onSubscribe: async (ctx, _id, params) => {
        const { schema, execute, subscribe, contextFactory, parse, validate } = app.getEnveloped({ ...ctx, req: ctx.extra.request, socket: ctx.extra.socket, params });
        const document = parse(params.query);
        const errors = validate(schema, document);
        if (errors.length > 0) return errors;
        const connectionParams = (ctx.connectionParams ?? {}) as Record<string, unknown>;
        const header = typeof connectionParams.authorization === 'string' ? connectionParams.authorization : undefined;
        const viewer = await viewerFromToken(services.tokens, systemFork(services.orm), bearerToken(header));
        return {
          schema,
          operationName: params.operationName,
          document,
          variableValues: params.variables,
          contextValue: { ...(await contextFactory()), ...createContext(services, viewer) },
          rootValue: { execute, subscribe },
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
    async close() {
      await ws.dispose();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
