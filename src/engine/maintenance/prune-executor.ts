// The PRUNE executor: applies retention (src/engine/retention.ts) and removes what it deletes.
//
// What a PRUNE task prunes, from its fields:
//   - params.backupIds: exactly these backups (backupDelete), whatever the retention says;
//   - else its policy: every AVAILABLE backup the policy made, per instance and destination
//     (only in task.destination when the task names one).
// Phases, in crash-safe order:
//   plan    → choose the backups to delete;
//   forget  → ONE transaction: the rows become DELETED (deletedAt) and the usage ledger closes
//             their intervals — users and billing stop seeing them at once;
//   collect → per destination: the repository forgets every record whose row is DELETED (so a
//             prune that died after `forget` is finished by the next one) or FAILED (data stored,
//             row never completed), then garbage-collects. The repository's exclusive lock waits for running backups (they
//             hold shared locks), so data a running backup references is never collected.
// A retried or repeated prune is harmless: rows already DELETED are skipped, records already
// gone are ignored by the repository.
import type { EntityManager } from '@mikro-orm/postgresql';
import { validate as isUuid } from 'uuid';
import { Backup, BackupDestination, Policy } from '../../db/entities/index.ts';
import type { SecretBox } from '../../db/secrets.ts';
import { openDestinationRepository } from '../backup/destination-repository.ts';
import { RepositoryError, type BackupRecord, type PruneResult } from '../repository/index.ts';
import { planRetention } from '../retention.ts';
import type { TaskContext } from '../task-runner.ts';
import type { UsageRecorder } from '../usage.ts';
import { saveTaskResult } from './task-result.ts';

export type PruneExecutorDeps = {
  secrets: SecretBox;
  usage?: UsageRecorder;
  /** Repository worker threads; default one per core. */
  workers?: number;
  now?: () => Date;
};

export class PruneTaskError extends Error {}

export type PruneSummary = {
  deleted: number;
  kept: number;
  /** Backups retention (or a delete) chose but that hold the Glance image of backups that stay. */
  sparedImageHolders?: string[];
  destinations: { destinationId: string; forgotten: number; deletedPacks: number; repackedPacks: number; deletedBytes: number; skipped?: string }[];
};

export function pruneExecutor(deps: PruneExecutorDeps) {
  return async (ctx: TaskContext): Promise<void> => {
    const em = ctx.em;
    const task = ctx.task;
    const backupIds = task.params?.backupIds;
    if (backupIds !== undefined && !(Array.isArray(backupIds) && backupIds.every((id) => typeof id === 'string'))) {
      throw new PruneTaskError('params.backupIds must be a list of backup ids');
    }
    if (!backupIds && !task.policy) throw new PruneTaskError('a prune task needs a policy or backup ids');
    const now = deps.now?.() ?? new Date();

    await ctx.phase('plan');
    const planned = backupIds
      ? { doomed: await em.find(Backup, { id: { $in: backupIds as string[] }, state: 'AVAILABLE' }, { filters: false }), kept: 0 }
      : await retentionVictims(em, task.policy!.id, task.destination?.id ?? null, now);
    const holders = await imageHolders(em, planned.doomed);
    const doomed = planned.doomed.filter((b) => !holders.has(b.id));
    const kept = planned.kept + holders.size;

    await ctx.phase('forget');
    let deleted = 0;
    await em.transactional(async (tx) => {
      for (const b of doomed) {
        // Conditional: a backup deleted meanwhile (another prune) is neither counted nor closed twice.
        const n = await tx.nativeUpdate(Backup, { id: b.id, state: 'AVAILABLE' }, { state: 'DELETED', deletedAt: now });
        if (n === 0) continue;
        deleted++;
        await deps.usage?.backupDeleted(tx as EntityManager, b.id, now);
      }
    });

    const destinationIds = [...new Set([...doomed.map((b) => b.destination.id), ...(task.destination ? [task.destination.id] : [])])];
    const bytesOf = (destinationId: string) => doomed.filter((b) => b.destination.id === destinationId).reduce((s, b) => s + b.storedBytes, 0n);
    const total = destinationIds.reduce((s, id) => s + bytesOf(id), 0n);
    await ctx.phase('collect', total);
    const summary: PruneSummary = { deleted, kept, ...(holders.size ? { sparedImageHolders: [...holders] } : {}), destinations: [] };
    let done = 0n;
    for (const destinationId of destinationIds) {
      const r = await collect(em, deps, destinationId, ctx.signal);
      summary.destinations.push(r);
      done += bytesOf(destinationId);
      ctx.progress({ bytesDone: done, bytesTotal: total });
    }
    await saveTaskResult(em, task.id, summary);
  };
}

/** The policy's AVAILABLE backups its retention deletes, per instance and destination. */
async function retentionVictims(em: EntityManager, policyId: string, destinationId: string | null, now: Date): Promise<{ doomed: Backup[]; kept: number }> {
  const policy = await em.findOneOrFail(Policy, policyId, { filters: false });
  const backups = await em.find(
    Backup,
    { policy: policyId, state: 'AVAILABLE', completedAt: { $ne: null }, ...(destinationId ? { destination: destinationId } : {}) },
    { populate: ['instance'], filters: false },
  );
  const groups = new Map<string, Backup[]>();
  for (const b of backups) {
    const key = `${b.instance.id}|${b.destination.id}`;
    groups.set(key, [...(groups.get(key) ?? []), b]);
  }
  const doomed: Backup[] = [];
  let kept = 0;
  for (const group of groups.values()) {
    const plan = planRetention(
      group.map((b) => ({ id: b.id, type: b.type, completedAt: b.completedAt!, parentId: b.parent?.id ?? null })),
      policy.retention,
      { now, instanceExists: group[0]!.instance.present },
    );
    kept += plan.keep.length;
    const ids = new Set(plan.delete);
    doomed.push(...group.filter((b) => ids.has(b.id)));
  }
  return { doomed, kept };
}

/**
 * Of `doomed`, the backups holding the Glance image of an AVAILABLE backup that stays (an
 * incremental names the full backup that downloaded its image, `glanceImage.heldBy`): deleting
 * one would leave those backups without their image, so it waits until they go too.
 */
async function imageHolders(em: EntityManager, doomed: Backup[]): Promise<Set<string>> {
  if (doomed.length === 0) return new Set();
  const ids = doomed.map((b) => b.id);
  const dependants = await em.find(
    Backup,
    { state: 'AVAILABLE', id: { $nin: ids }, metadata: { glanceImage: { heldBy: { $in: ids } } } },
    { fields: ['metadata'], filters: false },
  );
  return new Set(dependants.map((b) => (b.metadata.glanceImage as { heldBy: string }).heldBy));
}

/**
 * Forgets the destination's records whose rows are DELETED (a prune that died after `forget` is
 * finished here) or FAILED (a run whose data reached the repository but whose row never became
 * AVAILABLE), then collects garbage. The repository's own list bounds the work; a record no row
 * names (another catalog's, or one written by the CLI) is kept: the destination, not the
 * database, is the source of truth.
 */
async function collect(em: EntityManager, deps: PruneExecutorDeps, destinationId: string, signal: AbortSignal): Promise<PruneSummary['destinations'][number]> {
  const destination = await em.findOneOrFail(BackupDestination, destinationId, { filters: false });
  let repo;
  try {
    repo = await openDestinationRepository(destination, deps.secrets, { workers: deps.workers });
  } catch (e) {
    if (e instanceof RepositoryError && e.code === 'NOT_A_REPOSITORY') {
      return { destinationId, forgotten: 0, deletedPacks: 0, repackedPacks: 0, deletedBytes: 0, skipped: 'no repository in this destination yet' };
    }
    throw e;
  }
  let r: PruneResult;
  try {
    r = await repo.prune({ forget: await abandonedRecords(em, destinationId, await repo.list()), signal });
  } finally {
    await repo.close();
  }
  return { destinationId, forgotten: r.forgotten.length, deletedPacks: r.deletedPacks, repackedPacks: r.repackedPacks, deletedBytes: r.deletedBytes };
}

/** Of `records`, those whose row (by record ID, or by the row ID the record carries) is DELETED or FAILED. */
async function abandonedRecords(em: EntityManager, destinationId: string, records: BackupRecord[]): Promise<string[]> {
  if (records.length === 0) return [];
  const rowIdOf = (r: BackupRecord) => (r.metadata as { strongboxBackupId?: unknown } | null)?.strongboxBackupId;
  const rowIds = records.map(rowIdOf).filter((id): id is string => typeof id === 'string' && isUuid(id));
  const rows = await em.find(
    Backup,
    { destination: destinationId, state: { $in: ['DELETED', 'FAILED'] }, $or: [{ repositoryBackupId: { $in: records.map((r) => r.id) } }, { id: { $in: rowIds } }] },
    { fields: ['id', 'repositoryBackupId'], filters: false },
  );
  const gone = new Set(rows.flatMap((b) => [b.id, b.repositoryBackupId].filter((v): v is string => !!v)));
  return records.filter((r) => gone.has(r.id) || gone.has(rowIdOf(r) as string)).map((r) => r.id);
}
