// Every metric of the service, in one place (Prometheus text format at GET /metrics).
//
// Two kinds:
// - work done in this process (bytes moved, durations, quota decisions, errors, GraphQL
//   operations): counters and histograms in one module-level registry, incremented where the
//   work happens. A module is loaded once per process, so registration happens once however
//   many apps a process (a test file) creates.
// - shared state (tasks by type and state, queue depth and age, data movers alive): read from
//   the database at scrape time with cheap aggregate queries. These gauges live in a registry
//   per Services (made on first scrape), so two apps in one process each report their own
//   database and nothing global has to be re-bound.
//
// Labels are bounded: destination *names*, task types and states, OpenStack service types,
// error kinds, quota actions; never an instance, task or project ID. GraphQL operation names
// are chosen by clients, so only the first MAX_OPERATION_NAMES distinct ones get their own
// label value; later ones are reported as "other".
import { getOperationAST, type DocumentNode } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { createCounter, createHistogram, usePrometheus, type FillLabelsFnParams } from '@graphql-yoga/plugin-prometheus';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { TaskTypes } from '../db/entities/task.ts';
import { HEARTBEAT_MS } from '../engine/data-mover.ts';
import type { Services } from '../services.ts';

/** This process's counters and histograms (plus Node's process_* and nodejs_* metrics). */
export const processRegistry = new Registry();
collectDefaultMetrics({ register: processRegistry });

const registers = [processRegistry];
/** Seconds of one backup or restore: a second to 12 hours. */
const TASK_SECONDS = [1, 5, 15, 60, 300, 900, 1800, 3600, 7200, 14400, 43200];
/** Bytes per second of one backup or restore: 1 MiB/s to 4 GiB/s. */
const RATE_BUCKETS = [1, 4, 16, 64, 128, 256, 512, 1024, 4096].map((mib) => mib * 2 ** 20);

// ---- Backups and restores (data movers) ----------------------------------------------------

export const backupReadBytes = new Counter({
  name: 'strongbox_backup_read_bytes_total', help: 'Bytes read from the cloud by completed backups', labelNames: ['destination'], registers,
});
export const backupTransferredBytes = new Counter({
  name: 'strongbox_backup_transferred_bytes_total', help: 'Bytes sent to the destination by completed backups', labelNames: ['destination'], registers,
});
export const backupStoredBytes = new Counter({
  name: 'strongbox_backup_stored_bytes_total', help: 'New bytes stored in the destination by completed backups (after deduplication and compression)', labelNames: ['destination'], registers,
});
export const backupDuration = new Histogram({
  name: 'strongbox_backup_duration_seconds', help: 'Duration of completed backups', labelNames: ['destination'], buckets: TASK_SECONDS, registers,
});
export const backupRate = new Histogram({
  name: 'strongbox_backup_rate_bytes_per_second', help: 'Bytes read per second by each completed backup', labelNames: ['destination'], buckets: RATE_BUCKETS, registers,
});
export const restoreWrittenBytes = new Counter({
  name: 'strongbox_restore_written_bytes_total', help: 'Bytes written to new volumes by completed restores', labelNames: ['destination'], registers,
});
export const restoreDuration = new Histogram({
  name: 'strongbox_restore_duration_seconds', help: 'Duration of completed restores', labelNames: ['destination'], buckets: TASK_SECONDS, registers,
});
export const restoreRate = new Histogram({
  name: 'strongbox_restore_rate_bytes_per_second', help: 'Bytes written per second by each completed restore', labelNames: ['destination'], buckets: RATE_BUCKETS, registers,
});

/** A completed backup's figures, as recorded on its Backup row. */
export function recordBackup(destination: string, f: { readBytes: bigint; transferredBytes: bigint; storedBytes: bigint; durationSeconds?: number | null }) {
  const seconds = f.durationSeconds ?? 0;
  backupReadBytes.inc({ destination }, Number(f.readBytes));
  backupTransferredBytes.inc({ destination }, Number(f.transferredBytes));
  backupStoredBytes.inc({ destination }, Number(f.storedBytes));
  backupDuration.observe({ destination }, seconds);
  if (seconds > 0) backupRate.observe({ destination }, Number(f.readBytes) / seconds);
}

/** A completed restore: the bytes written into the cloud and how long it took. */
export function recordRestore(destination: string, f: { bytes: number; seconds: number }) {
  restoreWrittenBytes.inc({ destination }, f.bytes);
  restoreDuration.observe({ destination }, f.seconds);
  if (f.seconds > 0) restoreRate.observe({ destination }, f.bytes / f.seconds);
}

export const tasksFinished = new Counter({
  name: 'strongbox_tasks_finished_total', help: 'Tasks that reached a final state in this process (run by its data mover, or cancelled while queued through its API), by type and state', labelNames: ['type', 'state'], registers,
});

// ---- Quotas, errors ------------------------------------------------------------------------

export const quotaAdmissions = new Counter({
  name: 'strongbox_quota_admissions_total',
  help: 'Quota decisions on task creation: admitted, admitted over a soft limit, or refused by a hard limit',
  labelNames: ['action', 'outcome'],
  registers,
});

export const openstackApiErrors = new Counter({
  name: 'strongbox_openstack_api_errors_total',
  help: 'Failed OpenStack API calls (each attempt), by service type and kind: not_found, client_error (4xx), server_error (5xx), timeout, connection, invalid_response',
  labelNames: ['service', 'kind'],
  registers,
});

export const destinationErrors = new Counter({
  name: 'strongbox_destination_errors_total',
  help: 'Failed destination operations (after the backend\'s retries), by destination name and kind: not_found, unavailable, denied, invalid, other',
  labelNames: ['destination', 'kind'],
  registers,
});

// ---- GraphQL --------------------------------------------------------------------------------

const MAX_OPERATION_NAMES = 200;
const operationNames = new Set<string>();
/** A bounded label value for a client-chosen operation name. */
export function operationLabel(name: string | undefined | null): string {
  if (!name) return 'anonymous';
  if (operationNames.has(name)) return name;
  if (operationNames.size >= MAX_OPERATION_NAMES) return 'other';
  operationNames.add(name);
  return name;
}

const operationLabels = (p: FillLabelsFnParams) => ({ operation_name: operationLabel(p.operationName), operation_type: p.operationType ?? 'unknown' });

const graphqlDuration = createHistogram<'execute' | 'subscribe', 'operation_name' | 'operation_type'>({
  registry: processRegistry,
  histogram: {
    name: 'strongbox_graphql_operation_duration_seconds',
    help: 'Time to execute a GraphQL operation (subscriptions: to set up), by operation name and type',
    labelNames: ['operation_name', 'operation_type'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  },
  fillLabelsFn: operationLabels,
});
const graphqlErrors = createCounter<'parse' | 'validate' | 'context' | 'execute' | 'subscribe', 'operation_name' | 'operation_type' | 'phase', FillLabelsFnParams & { error: unknown; errorPhase: 'parse' | 'validate' | 'context' | 'execute' | 'subscribe' }>({
  registry: processRegistry,
  counter: {
    name: 'strongbox_graphql_errors_total',
    help: 'GraphQL errors by operation and phase: parse, validate and context count once per refused operation, execute and subscribe once per error in the result',
    labelNames: ['operation_name', 'operation_type', 'phase'],
  },
  fillLabelsFn: (p) => ({ ...operationLabels(p), phase: p.errorPhase }),
});
export const graphqlOperations = new Counter({
  name: 'strongbox_graphql_operations_total',
  help: 'GraphQL operations executed (subscriptions: started), by name, type and outcome (ok, error: the result carried errors)',
  labelNames: ['operation_name', 'operation_type', 'outcome'],
  registers,
});

/** The outcome of each operation that reached execution (yoga's plugin has no outcome label). */
function operationOutcomes(): Plugin {
  const count = (document: DocumentNode, operationName: string | null | undefined, result: unknown) => {
    const op = getOperationAST(document, operationName);
    const errors = (result as { errors?: unknown[] } | undefined)?.errors;
    graphqlOperations.inc({
      operation_name: operationLabel(op?.name?.value), operation_type: op?.operation ?? 'unknown', outcome: errors?.length ? 'error' : 'ok',
    });
  };
  return {
    onExecute: ({ args }) => ({
      onExecuteDone: ({ result }) => count(args.document, args.operationName, Symbol.asyncIterator in Object(result) ? undefined : result),
    }),
    onSubscribe: ({ args }) => ({
      onSubscribeResult: ({ result }) => count(args.document, args.operationName, Symbol.asyncIterator in Object(result) ? undefined : result),
      onSubscribeError: () => count(args.document, args.operationName, { errors: [1] }),
    }),
  };
}

/**
 * The yoga plugins that measure GraphQL operations: over HTTP and over graphql-ws alike (the
 * socket path runs through `app.getEnveloped`, whose parse/validate/execute/subscribe carry
 * these hooks). Yoga's own /metrics endpoint is off: ours adds the token and the database gauges.
 */
export function graphqlMetrics(): Plugin[] {
  return [
    usePrometheus({
      registry: processRegistry,
      endpoint: false,
      metrics: {
        graphql_envelop_request_duration: graphqlDuration,
        graphql_envelop_error_result: graphqlErrors,
        graphql_envelop_request: false,
        graphql_envelop_request_time_summary: false,
        graphql_envelop_deprecated_field: false,
        graphql_envelop_phase_parse: false,
        graphql_envelop_phase_validate: false,
        graphql_envelop_phase_context: false,
        graphql_envelop_phase_execute: false,
        graphql_envelop_phase_subscribe: false,
        graphql_envelop_schema_change: false,
        graphql_envelop_execute_resolver: false,
        graphql_yoga_http_duration: false,
      },
    }),
    operationOutcomes(),
  ];
}

// ---- Shared state, read from the database at scrape time ------------------------------------

/** Active states: finished tasks are counted by strongbox_tasks_finished_total instead (an ever-growing table is not counted per scrape). */
const ACTIVE_STATES = ['QUEUED', 'RUNNING'] as const;

function databaseRegistry(services: Services): Registry {
  const registry = new Registry();
  const query = (sql: string) => services.orm.em.getConnection().execute(sql) as Promise<Record<string, unknown>[]>;

  new Gauge({
    name: 'strongbox_tasks', help: 'Tasks queued or running now, by type and state', labelNames: ['type', 'state'], registers: [registry],
    async collect() {
      const rows = await query(`select type, state, count(*)::int as n from task where state in ('QUEUED', 'RUNNING') group by type, state`);
      for (const type of TaskTypes) for (const state of ACTIVE_STATES) this.set({ type, state }, 0);
      for (const r of rows) this.set({ type: String(r.type), state: String(r.state) }, Number(r.n));
    },
  });
  // Due now: queued and past its not-before time (a scheduled task waiting for its window is not backlog).
  const due = `from task where state = 'QUEUED' and coalesce(not_before, created_at) <= now()`;
  new Gauge({
    name: 'strongbox_queue_depth', help: 'Queued tasks due to run now, by type', labelNames: ['type'], registers: [registry],
    async collect() {
      const rows = await query(`select type, count(*)::int as n ${due} group by type`);
      for (const type of TaskTypes) this.set({ type }, Number(rows.find((r) => r.type === type)?.n ?? 0));
    },
  });
  new Gauge({
    name: 'strongbox_queue_oldest_task_age_seconds', help: 'How long the oldest due queued task has waited, by type (0: none waiting)', labelNames: ['type'], registers: [registry],
    async collect() {
      const rows = await query(`select type, extract(epoch from now() - min(coalesce(not_before, created_at)))::float8 as age ${due} group by type`);
      for (const type of TaskTypes) this.set({ type }, Math.max(0, Number(rows.find((r) => r.type === type)?.age ?? 0)));
    },
  });
  new Gauge({
    // Alive as task eligibility sees it (src/engine/eligibility.ts): a heartbeat in the last 6 beats.
    name: 'strongbox_data_movers_alive', help: 'Data movers that heartbeat recently and have not stopped, by node configuration name ("" for none)', labelNames: ['node_configuration'], registers: [registry],
    async collect() {
      const rows = await query(
        `select coalesce(nc.name, '') as nc, count(*)::int as n from data_mover m left join node_configuration nc on nc.id = m.node_configuration_id
          where m.stopped_at is null and m.last_heartbeat_at > now() - interval '${(6 * HEARTBEAT_MS) / 1000} seconds' group by 1`,
      );
      this.reset();
      this.set({ node_configuration: '' }, 0);
      for (const r of rows) this.set({ node_configuration: String(r.nc) }, Number(r.n));
    },
  });
  return registry;
}

const databaseRegistries = new WeakMap<Services, Registry>();

/** The Prometheus text of this process's metrics and the database's shared state. */
export async function scrape(services: Services): Promise<{ contentType: string; body: string }> {
  let db = databaseRegistries.get(services);
  if (!db) databaseRegistries.set(services, (db = databaseRegistry(services)));
  const merged = Registry.merge([processRegistry, db]);
  return { contentType: merged.contentType, body: await merged.metrics() };
}
