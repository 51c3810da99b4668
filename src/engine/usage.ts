// What the engine tells the usage ledger (billing keeps it; the process that runs the engine
// wires it in, so the engine does not depend on billing): a backup became available, a backup
// was deleted. Both run in the caller's transaction and are idempotent.
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Backup } from '../db/entities/index.ts';

export type UsageRecorder = {
  backupCompleted(em: EntityManager, backup: Backup): Promise<void>;
  backupDeleted(em: EntityManager, backupId: string, at: Date): Promise<void>;
};
