// Writing the audit trail (AuditEvent rows): the GraphQL audit plugin records every mutation,
// the task runner every task outcome. A row is written after the work it describes has
// committed (a refused mutation has no transaction to share), so a failed write cannot be
// rolled into it: it is retried once, then the rows go to stderr as `audit-unwritten` JSON
// lines (to be replayed) and the caller is told (the API answers with AUDIT_WRITE_FAILED).
import { encodeGlobalID } from '@pothos/plugin-relay';
import { AuditEvent, type Task } from '../db/entities/index.ts';
import { systemFork, type Orm } from '../db/orm.ts';
import { currentRequestId } from '../observability/request-context.ts';

export type AuditRecord = Omit<AuditEvent, 'id' | 'at' | 'targetIds'> & Partial<Pick<AuditEvent, 'at' | 'targetIds'>>;

export const SYSTEM_ACTOR = 'system';
export const MAX_MESSAGE = 500;

export function shortMessage(text: string | null | undefined): string | undefined {
  if (!text) return undefined;
  return text.length > MAX_MESSAGE ? `${text.slice(0, MAX_MESSAGE - 1)}…` : text;
}

/** Writes `records`; false (after a retry, and a line per record on stderr) when they could not be. */
export async function writeAuditEvents(orm: Orm, records: readonly AuditRecord[]): Promise<boolean> {
  if (records.length === 0) return true;
  for (let attempt = 1; attempt <= 2; attempt++) {
    try {
      const em = systemFork(orm);
      // The request (or the task's originating request) the row belongs to, as in the logs.
      const requestId = currentRequestId();
      for (const r of records) em.persist(Object.assign(new AuditEvent(), { requestId, ...r }));
      await em.flush();
      return true;
    } catch (e) {
      if (attempt === 2) {
        const reason = e instanceof Error ? e.message : String(e);
        for (const r of records) process.stderr.write(`audit-unwritten ${JSON.stringify({ ...r, reason })}\n`);
      }
    }
  }
  return false;
}

/** The row for a task's final state (`task.BACKUP.SUCCEEDED`); the actor is the system. */
export function taskOutcomeEvent(task: Task, state: 'SUCCEEDED' | 'FAILED' | 'CANCELLED', error?: string): AuditRecord {
  return {
    actorName: SYSTEM_ACTOR,
    action: `task.${task.type}.${state}`,
    projectId: task.project?.id,
    targetIds: [encodeGlobalID('Task', task.id)],
    result: state === 'SUCCEEDED' ? 'OK' : state,
    message: shortMessage(error),
  };
}


/** What `auditEvents` and `/audit/events.csv` may filter by (database IDs). */
export type AuditFilter = {
  /** At or after. */
  from?: Date;
  /** Before. */
  to?: Date;
  projectId?: string;
  actorId?: string;
  /** `task.` for every task outcome, `service` for the service-account mutations… */
  actionPrefix?: string;
  result?: string;
};

/** The filter as MikroORM conditions (the caller's scope is added by the caller). */
export function auditConditions(filter: AuditFilter): Record<string, unknown>[] {
  const where: Record<string, unknown>[] = [];
  if (filter.from) where.push({ at: { $gte: filter.from } });
  if (filter.to) where.push({ at: { $lt: filter.to } });
  if (filter.projectId) where.push({ projectId: filter.projectId });
  if (filter.actorId) where.push({ actorId: filter.actorId });
  if (filter.actionPrefix) where.push({ action: { $like: `${filter.actionPrefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%` } });
  if (filter.result) where.push({ result: filter.result });
  return where;
}
