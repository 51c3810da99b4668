// Quota admission, exact under concurrency. For every quota assigned to the project that
// governs the action, the usage in the quota's window is counted while holding a transaction-
// scoped advisory lock on (quota, instance-or-project); the caller creates its task in the
// same transaction, so the next checker (waiting on the lock) already counts it.
import type { EntityManager } from '@mikro-orm/postgresql';
import { Quota } from '../../db/entities/index.ts';

export type QuotaRequest = {
  action: 'BACKUP' | 'RESTORE';
  projectId: string;
  instanceId?: string;
  /** What this task would add to BYTES quotas (the front-end size it will read or write). */
  bytes: bigint;
};

export type QuotaFinding = {
  quota: Quota;
  level: 'HARD' | 'SOFT';
  limit: bigint;
  /** Usage in the window before this request. */
  used: bigint;
  /** What this request adds (1 for COUNT, its bytes for BYTES). */
  requested: bigint;
};

export type QuotaDecision = { admitted: boolean; refusals: QuotaFinding[]; alerts: QuotaFinding[] };

/** Tasks that count against a quota: everything not failed or cancelled. */
const COUNTED_STATES = `('QUEUED', 'RUNNING', 'SUCCEEDED')`;

/**
 * Decide whether a task may be created. With `lock` (the default) it must run inside the
 * transaction that then creates the task; `quotaPreview` passes `lock: false`.
 */
export async function checkQuotas(em: EntityManager, req: QuotaRequest, now = new Date(), opts: { lock?: boolean } = {}): Promise<QuotaDecision> {
  const quotas = await em.find(Quota, { action: req.action, projects: req.projectId }, { filters: false, orderBy: { id: 'asc' } });
  const decision: QuotaDecision = { admitted: true, refusals: [], alerts: [] };
  for (const quota of quotas) {
    const scoped = quota.scope === 'INSTANCE' ? req.instanceId : req.projectId;
    if (!scoped) continue; // an instance quota does not govern a request without an instance
    if (opts.lock !== false) {
      await em.execute(`select pg_advisory_xact_lock(hashtextextended(?, 0))`, [`quota:${quota.id}:${scoped}`]);
    }
    const column = quota.scope === 'INSTANCE' ? 'instance_id' : 'project_id';
    const measure = quota.measure === 'COUNT' ? 'count(*)' : `coalesce(sum((params->>'quotaBytes')::numeric), 0)`;
    // em.execute runs in the em's transaction (the connection's own execute would not).
    const [row] = await em.execute(
      `select ${measure}::text as used from task
        where type = ? and ${column} = ? and state in ${COUNTED_STATES} and created_at > ?`,
      [req.action, scoped, new Date(now.getTime() - quota.windowSeconds * 1000)],
    );
    const used = BigInt(row.used);
    const requested = quota.measure === 'COUNT' ? 1n : req.bytes;
    if (quota.hardLimit !== undefined && quota.hardLimit !== null && used + requested > quota.hardLimit) {
      decision.admitted = false;
      decision.refusals.push({ quota, level: 'HARD', limit: quota.hardLimit, used, requested });
    } else if (quota.softLimit !== undefined && quota.softLimit !== null && used + requested > quota.softLimit) {
      decision.alerts.push({ quota, level: 'SOFT', limit: quota.softLimit, used, requested });
    }
  }
  return decision;
}

export function describeFinding(f: QuotaFinding): string {
  const unit = f.quota.measure === 'COUNT' ? `${f.quota.action.toLowerCase()}s` : 'bytes';
  const per = f.quota.scope === 'INSTANCE' ? 'per instance' : 'per project';
  return `quota ${JSON.stringify(f.quota.name)}: ${f.used} ${unit} used ${per} in the last ${f.quota.windowSeconds} s, ` +
    `this request adds ${f.requested}, ${f.level.toLowerCase()} limit ${f.limit}`;
}
