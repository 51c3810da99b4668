// The simulator's request context, replies and routing table.
import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import type { SimToken } from './model.ts';
import type { Version } from './shapes.ts';
import type { Simulator } from './simulator.ts';

export type Service = 'identity' | 'compute' | 'volume' | 'image' | 'network';

export type Ctx = {
  sim: Simulator;
  req: IncomingMessage;
  method: string;
  service: Service;
  /** Path inside the service (after the version prefix, and for Cinder after the project ID). */
  path: string;
  query: URLSearchParams;
  params: string[];
  token?: SimToken;
  /** The microversion asked for (Nova, Cinder) or the service default. */
  mv: Version;
  /** The endpoint URL this request came through, for links (`…/v2.1`, `…/v3/<project>`). */
  serviceUrl: string;
  /** The URL without version, for "bookmark" links. */
  rootUrl: string;
  /** Cinder: the project ID in the URL. */
  urlProjectId?: string;
  json<T = Record<string, unknown>>(): Promise<T>;
};

export type Reply = { status: number; json?: unknown; headers?: Record<string, string>; stream?: Readable; text?: string };

export class SimError extends Error {
  constructor(readonly status: number, readonly body: unknown) {
    super(typeof body === 'string' ? body : JSON.stringify(body));
  }
}

/** Nova/Cinder style: `{"itemNotFound": {"code": 404, "message": …}}`. */
export function novaError(status: number, message: string): SimError {
  const key = { 400: 'badRequest', 403: 'forbidden', 404: 'itemNotFound', 406: 'notAcceptable', 409: 'conflictingRequest' }[status] ?? 'computeFault';
  return new SimError(status, { [key]: { code: status, message } });
}
export function keystoneError(status: number, title: string, message: string): SimError {
  return new SimError(status, { error: { code: status, message, title } });
}
export function neutronError(status: number, type: string, message: string): SimError {
  return new SimError(status, { NeutronError: { type, message, detail: '' } });
}
export function glanceError(status: number, message: string): SimError {
  const title = { 400: 'Bad Request', 403: 'Forbidden', 404: 'Not Found', 409: 'Conflict' }[status] ?? 'Error';
  return new SimError(status, `<html>\n <head>\n  <title>${status} ${title}</title>\n </head>\n <body>\n  <h1>${status} ${title}</h1>\n  ${message}<br /><br />\n\n\n\n </body>\n</html>`);
}

export type Handler = (ctx: Ctx) => Promise<Reply> | Reply;
export type Route = [method: string, pattern: RegExp, handler: Handler];

export function route(method: string, pattern: string, handler: Handler): Route {
  return [method, new RegExp(`^${pattern.replaceAll(':id', '([^/]+)')}/?$`), handler];
}

export const ok = (json: unknown, status = 200, headers?: Record<string, string>): Reply => ({ status, json, headers });
