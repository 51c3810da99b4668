// The event channels and their payloads. Payloads carry IDs and small deltas only; subscribers
// resolve everything else from the database (so an event never leaks more than its IDs).
import type { Task } from '../db/entities/index.ts';

export const Channels = {
  /** A task was created, changed state/phase, or reported progress. */
  task: 'sb_task',
  /** A soft quota limit was reached. */
  quotaAlert: 'sb_quota_alert',
} as const;

/**
 * CREATED and STATE events reach `taskUpdates` and `taskProgress`; PROGRESS events (frequent,
 * throttled by the reporter) reach `taskProgress` only.
 */
export type TaskEventKind = 'CREATED' | 'STATE' | 'PROGRESS';

export type TaskEvent = {
  kind: TaskEventKind;
  taskId: string;
  /** null for tasks of no project (inventory sync): only unscoped callers see those. */
  projectId: string | null;
  state: Task['state'];
  phase: string | null;
  /** Decimal strings: bigints do not survive JSON. */
  bytesDone: string;
  bytesTotal: string;
  /** Bytes per second. */
  rate: number | null;
  /** Seconds to go, when known. */
  eta: number | null;
  at: string;
};

export type QuotaAlertEvent = {
  quotaId: string;
  projectId: string;
  instanceId: string | null;
  /** What was measured over the quota's window, decimal string. */
  used: string;
  softLimit: string;
  at: string;
};

/** The event describing a task row as it is now. */
export function taskEvent(task: Task, kind: TaskEventKind, extra: { rate?: number | null; eta?: number | null } = {}): TaskEvent {
  return {
    kind,
    taskId: task.id,
    projectId: task.project?.id ?? null,
    state: task.state,
    phase: task.phase ?? null,
    bytesDone: task.bytesDone.toString(),
    bytesTotal: task.bytesTotal.toString(),
    rate: extra.rate ?? task.rate ?? null,
    eta: extra.eta ?? null,
    at: new Date().toISOString(),
  };
}
