// Fault: the backup record cannot be made durable. A PostgreSQL trigger refuses to mark any backup
// AVAILABLE, so a run fails after its data reached the repository and the hypervisor or Ceph side
// finished (checkpoint created, snapshot taken), at the last step before its record exists.
import { systemFork, type Orm } from '../../src/db/orm.ts';

export const REFUSAL = 'backup record refused (test fault)';

/** While the returned function has not been called, completing a backup fails with REFUSAL. */
export async function refuseBackupRecords(orm: Orm): Promise<() => Promise<void>> {
  const db = systemFork(orm);
  await db.execute(`create or replace function sb_test_refuse_backup() returns trigger language plpgsql as $$
    begin raise exception '${REFUSAL}'; end $$`);
  await db.execute(`create trigger sb_test_refuse_backup before update on backup for each row
    when (new.state = 'AVAILABLE') execute function sb_test_refuse_backup()`);
  return async () => {
    await db.execute('drop trigger sb_test_refuse_backup on backup');
    await db.execute('drop function sb_test_refuse_backup()');
  };
}
