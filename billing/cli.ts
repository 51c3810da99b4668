// `strongbox billing backfill` enters existing backups into the usage ledger (first deployment);
// `strongbox billing rebuild` recomputes the daily rollups from the intervals (repair).
import type { EntityManager } from '@mikro-orm/postgresql';
import { loadConfig } from '../src/config.ts';
import { openDatabase } from '../src/db/database.ts';
import { systemFork } from '../src/db/orm.ts';
import { backfillFromBackups, rebuildDailyRollups } from './ledger.ts';

export async function run(args: string[]): Promise<number> {
  const [sub] = args;
  if (sub !== 'backfill' && sub !== 'rebuild') {
    process.stderr.write('usage: strongbox billing backfill|rebuild\n');
    return 2;
  }
  const db = await openDatabase(loadConfig());
  try {
    const em = systemFork(db.orm) as EntityManager;
    if (sub === 'backfill') await backfillFromBackups(em);
    else await rebuildDailyRollups(em);
    const [row] = await em.execute<{ intervals: string; daily: string }[]>(`select (select count(*) from usage_interval) as intervals, (select count(*) from usage_daily) as daily`);
    process.stdout.write(`${JSON.stringify({ intervals: Number(row!.intervals), dailyRows: Number(row!.daily) })}\n`);
    return 0;
  } finally {
    await db.close();
  }
}
