// OpenTelemetry traces: spans for GraphQL operations, task runs and phases, OpenStack calls and
// destination object reads/writes, exported over OTLP/HTTP (JSON) when OTEL_EXPORTER_OTLP_ENDPOINT
// is set. Off by default: the spans below then go to the API's no-op tracer (no allocation of
// note, no context manager), so instrumented code costs nearly nothing.
import { isSpanContextValid, SpanStatusCode, trace, TraceFlags, type Attributes, type Link, type Span } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import type { Plugin } from 'graphql-yoga';
import { logger } from './logger.ts';
import { currentRequestId } from './request-context.ts';
import { operationName } from './request-log.ts';

/** Resolves to the real tracer once startTracing registered a provider (a proxy until then). */
export const tracer = trace.getTracer('strongbox');

export type Tracing = { shutdown(): Promise<void> };

/** Starts exporting when an endpoint is configured; undefined (tracing off) otherwise. */
export function startTracing(config: { otlpEndpoint?: string; serviceName: string }): Tracing | undefined {
  if (!config.otlpEndpoint) return undefined;
  const url = `${config.otlpEndpoint.replace(/\/+$/, '')}/v1/traces`;
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': config.serviceName }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url }), { scheduledDelayMillis: 1000 })],
  });
  provider.register(); // global provider + the AsyncLocalStorage context manager
  logger.info({ otlp: url }, 'tracing: exporting spans over OTLP/HTTP');
  return {
    async shutdown() {
      await provider.shutdown();
      trace.disable();
    },
  };
}

/** Runs `fn` in a span (a child of the active one); errors mark the span and pass through. */
export function inSpan<T>(name: string, attributes: Attributes, fn: (span: Span) => Promise<T>, links: Link[] = []): Promise<T> {
  return tracer.startActiveSpan(name, { attributes: withRequestId(attributes), links }, async (span) => {
    try {
      return await fn(span);
    } catch (e) {
      span.recordException(e as Error);
      span.setStatus({ code: SpanStatusCode.ERROR, message: (e as Error)?.message });
      throw e;
    } finally {
      span.end();
    }
  });
}

/** A span ended by the caller (task phases, which begin and end at separate calls). */
export function startSpan(name: string, attributes: Attributes = {}): Span {
  return tracer.startSpan(name, { attributes: withRequestId(attributes) });
}

/**
 * The active span as a W3C traceparent, kept with work that crosses the queue (a task); undefined
 * when tracing is off.
 */
export function currentTraceparent(): string | undefined {
  const c = trace.getActiveSpan()?.spanContext();
  if (!c || !isSpanContextValid(c)) return undefined;
  return `00-${c.traceId}-${c.spanId}-${(c.traceFlags & TraceFlags.SAMPLED ? 1 : 0).toString(16).padStart(2, '0')}`;
}

/**
 * A link to the span a traceparent names: a task runs in a trace of its own (it may start hours
 * after its request) that points back at the request's.
 */
export function linkTo(traceparent: string | null | undefined): Link[] {
  const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(traceparent ?? '');
  if (!m) return [];
  const context = { traceId: m[1]!, spanId: m[2]!, traceFlags: parseInt(m[3]!, 16), isRemote: true };
  return isSpanContextValid(context) ? [{ context }] : [];
}

function withRequestId(attributes: Attributes): Attributes {
  const requestId = currentRequestId();
  return requestId ? { ...attributes, 'strongbox.request_id': requestId } : attributes;
}

/** A span per GraphQL operation (HTTP and graphql-ws), named by the operation. */
export function graphqlTracing(): Plugin {
  return {
    instrumentation: {
      execute: ({ context }, wrapped) => traced(context, 'execute', wrapped),
      subscribe: ({ context }, wrapped) => traced(context, 'subscribe', wrapped),
    },
    // The operation's name is known once its document is parsed.
    onExecute({ args }) {
      const name = operationName(args.document, args.operationName);
      if (name) trace.getActiveSpan()?.updateName(`graphql.execute ${name}`).setAttribute('graphql.operation.name', name);
    },
    onSubscribe({ args }) {
      const name = operationName(args.document, args.operationName);
      if (name) trace.getActiveSpan()?.updateName(`graphql.subscribe ${name}`).setAttribute('graphql.operation.name', name);
    },
  };
}

function traced(context: { params?: { operationName?: string } }, kind: string, wrapped: () => unknown): any {
  const name = context.params?.operationName;
  return tracer.startActiveSpan(`graphql.${kind}${name ? ` ${name}` : ''}`, { attributes: withRequestId({ 'graphql.operation.name': name ?? '' }) }, (span) => {
    const end = (e?: unknown) => {
      if (e) span.setStatus({ code: SpanStatusCode.ERROR, message: (e as Error)?.message });
      span.end();
    };
    try {
      const result = wrapped();
      if (result instanceof Promise) return result.then(() => end(), (e) => (end(e), Promise.reject(e)));
      end();
      return result;
    } catch (e) {
      end(e);
      throw e;
    }
  });
}
