// Dedup-aware attribution of one destination: who pays for the chunks its repository stores.
//
// The chunk references come from the repository itself, read-only through its public methods
// (no lock is taken and nothing is written): per AVAILABLE backup row of the destination, its
// repository record (`repositoryBackupId`) → each disk's manifest → the non-zero chunk ids; the
// stored size of a chunk is the length of its sealed blob in its pack (nonce + compressed or raw
// body + tag), which the chunk index knows for every chunk. Backup rows map repository backups
// to instances and projects. `AttributionBuilder` (attribution.ts) splits the bytes.
//
// Shares are always computed over every instance of the destination, so they sum to the
// destination's stored total; a tenant's scope only filters the rows returned afterwards.
import type { EntityManager } from '@mikro-orm/postgresql';
import type { SecretBox } from '../src/db/secrets.ts';
import { BackupDestination } from '../src/db/entities/index.ts';
import { openDestinationRepository } from '../src/engine/backup/destination-repository.ts';
import type { Repository } from '../src/engine/repository/index.ts';
import { AttributionBuilder, type Attribution, type ChunkReference } from './attribution.ts';
import { uuidArray, type ReportScope } from './report-common.ts';

export type DestinationAttribution = Attribution & {
  destinationId: string;
  destinationName: string;
  /** Repository backups read (the destination's AVAILABLE backup rows that name one). */
  backups: number;
  /** Backup rows whose repository backup could not be read (pruned or damaged meanwhile); not counted. */
  skipped: { backupId: string; repositoryBackupId: string; reason: string }[];
  /** Instance and project rows the caller may see; `instances`/`projects` above are every one. */
  visibleInstances: Attribution['instances'];
  visibleProjects: Attribution['projects'];
};

export class AttributionSourceError extends Error {
  constructor(readonly code: 'NOT_FOUND' | 'UNINDEXED_CHUNK', message: string) {
    super(message);
  }
  static destinationNotFound(ref: string) {
    return new AttributionSourceError('NOT_FOUND', `no backup destination ${JSON.stringify(ref)}`);
  }
  static unindexed(backup: string, chunk: string) {
    return new AttributionSourceError('UNINDEXED_CHUNK', `backup ${backup} references chunk ${chunk} that no index object lists (run repo verify)`);
  }
}

type BackupRow = { id: string; repository_backup_id: string; instance_id: string; project_id: string };

/** Adds the chunk references of the listed repository backups, one per (backup, disk slot) with data. */
async function addReferences(repo: Repository, rows: BackupRow[], add: (r: ChunkReference) => void, skipped: DestinationAttribution['skipped']): Promise<void> {
  for (const row of rows) {
    let manifests;
    try {
      const record = await repo.getBackup(row.repository_backup_id);
      manifests = await Promise.all(record.disks.map((d) => repo.readManifest(d.manifest)));
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === 'BACKUP_NOT_FOUND' || code === 'MISSING_OBJECT' || code === 'DAMAGED' || code === 'NOT_FOUND') {
        skipped.push({ backupId: row.id, repositoryBackupId: row.repository_backup_id, reason: (e as Error).message });
        continue;
      }
      throw e;
    }
    for (const m of manifests) {
      for (let i = 0; i < m.count; i++) {
        const id = m.id(i);
        if (!id) continue; // a zero chunk is never stored
        const loc = repo.index.get(id);
        if (!loc) throw AttributionSourceError.unindexed(row.repository_backup_id, id.toString('hex'));
        add({ instanceId: row.instance_id, projectId: row.project_id, chunkId: id.toString('hex'), storedSize: loc.length });
      }
    }
  }
}

/**
 * Attribution of a destination given by id or name. `opts.projectIds` narrows the rows returned
 * (never the computation); `scope` is the caller's (a tenant sees only its projects' rows).
 */
export async function destinationAttribution(
  em: EntityManager,
  secrets: SecretBox,
  destination: { id?: string; name?: string },
  scope: ReportScope,
  opts: { projectIds?: string[] | null } = {},
): Promise<DestinationAttribution> {
  const dest = destination.id
    ? await em.findOne(BackupDestination, { id: destination.id }, { filters: false })
    : await em.findOne(BackupDestination, { name: destination.name! }, { filters: false });
  if (!dest) throw AttributionSourceError.destinationNotFound(destination.id ?? destination.name ?? '');
  if (opts.projectIds) uuidArray('projectIds', opts.projectIds); // well-formed ids, or a typed error
  const rows = await em.execute<BackupRow[]>(
    `select id, repository_backup_id, instance_id, project_id from backup
     where destination_id = ? and state = 'AVAILABLE' and repository_backup_id is not null order by completed_at, id`,
    [dest.id],
  );
  const skipped: DestinationAttribution['skipped'] = [];
  let result: Attribution = { storedTotal: 0n, chunks: 0, instances: [], projects: [] };
  if (rows.length > 0) {
    const repo = await openDestinationRepository(dest, secrets, { workers: 1 });
    try {
      // Folded one by one: memory is one entry per distinct chunk, not per reference.
      const builder = new AttributionBuilder();
      await addReferences(repo, rows, (r) => builder.add(r), skipped);
      result = builder.result();
    } finally {
      await repo.close();
    }
  }
  const visible = (projectId: string) =>
    (scope.projectIds === null || scope.projectIds.includes(projectId)) && (!opts.projectIds || opts.projectIds.includes(projectId));
  return {
    ...result,
    destinationId: dest.id,
    destinationName: dest.name,
    backups: rows.length - skipped.length,
    skipped,
    visibleInstances: result.instances.filter((i) => visible(i.projectId)),
    visibleProjects: result.projects.filter((p) => visible(p.id)),
  };
}
