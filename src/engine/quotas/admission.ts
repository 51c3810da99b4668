// Quotas applied when a backup or restore task is created, in the creating transaction: a hard
// limit refuses (nothing is created), a soft limit lets the task through and raises an alert —
// an audit entry and a `quotaAlerts` event that leaves on commit.
import type { EntityManager } from '@mikro-orm/postgresql';
import { AuditEntry, Backup, Volume } from '../../db/entities/index.ts';
import { Channels, type QuotaAlertEvent } from '../../events/channels.ts';
import { notify } from '../../events/pubsub.ts';
import { checkQuotas, describeFinding, type QuotaRequest } from './quota-check.ts';
import { quotaAdmissions } from '../../observability/metrics.ts';

export class QuotaExceeded extends Error {
  readonly code = 'QUOTA_EXCEEDED';
}

/** What a task adds to BYTES quotas: the front-end size it will read (backup) or write (restore). */
export async function quotaBytes(em: EntityManager, action: 'BACKUP' | 'RESTORE', ids: { instanceId?: string; backupId?: string }): Promise<bigint> {
  if (action === 'RESTORE' && ids.backupId) {
    const backup = await em.findOne(Backup, ids.backupId, { filters: false });
    return backup?.frontEndBytes ?? 0n;
  }
  if (!ids.instanceId) return 0n;
  const volumes = await em.find(Volume, { instance: ids.instanceId, present: true }, { filters: false });
  return volumes.reduce((sum, v) => sum + v.sizeBytes, 0n);
}

export async function admit(em: EntityManager, req: QuotaRequest, actor: { accountId: string; name: string } | null): Promise<void> {
  const decision = await checkQuotas(em, req);
  quotaAdmissions.inc({ action: req.action, outcome: !decision.admitted ? 'refused' : decision.alerts.length ? 'admitted_over_soft_limit' : 'admitted' });
  if (!decision.admitted) throw new QuotaExceeded(decision.refusals.map(describeFinding).join('; '));
  for (const alert of decision.alerts) {
    em.create(AuditEntry, {
      accountId: actor?.accountId,
      accountName: actor?.name ?? 'system',
      action: 'quota.soft-limit',
      objectType: 'Quota',
      objectId: alert.quota.id,
      projectId: req.projectId,
      details: { message: describeFinding(alert), instanceId: req.instanceId ?? null },
    });
    const event: QuotaAlertEvent = {
      quotaId: alert.quota.id,
      projectId: req.projectId,
      instanceId: alert.quota.scope === 'INSTANCE' ? (req.instanceId ?? null) : null,
      used: (alert.used + alert.requested).toString(),
      softLimit: alert.limit.toString(),
      at: new Date().toISOString(),
    };
    await notify(em, Channels.quotaAlert, event);
  }
}
