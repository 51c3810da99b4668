// `strongbox billing backfill` enters existing backups into the usage ledger (first deployment);
// `strongbox billing rebuild` recomputes the daily rollups from the intervals (repair);
// `strongbox billing attribution --destination NAME` prints the dedup-aware attribution of a
// destination's stored bytes (JSON: per instance and per project; bytes as decimal strings).
import { parseArgs } from 'node:util';
import type { EntityManager } from '@mikro-orm/postgresql';
import { loadConfig } from '../src/config.ts';
import { openDatabase } from '../src/db/database.ts';
import { systemFork } from '../src/db/orm.ts';
import { loadMasterKey, SecretBox } from '../src/db/secrets.ts';
import { AttributionSourceError, destinationAttribution } from './destination-attribution.ts';
import { backfillFromBackups, rebuildDailyRollups } from './ledger.ts';

const USAGE = 'usage: strongbox billing backfill|rebuild|attribution --destination NAME\n';

export async function run(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'backfill' && sub !== 'rebuild' && sub !== 'attribution') {
    process.stderr.write(USAGE);
    return 2;
  }
  let destination: string | undefined;
  if (sub === 'attribution') {
    try {
      destination = parseArgs({ args: rest, options: { destination: { type: 'string' } } }).values.destination;
    } catch (e) {
      process.stderr.write(`${(e as Error).message}\n${USAGE}`);
      return 2;
    }
    if (!destination) {
      process.stderr.write(USAGE);
      return 2;
    }
  }
  const config = loadConfig();
  const db = await openDatabase(config);
  try {
    const em = systemFork(db.orm) as EntityManager;
    if (sub === 'attribution') {
      try {
        const a = await destinationAttribution(em, new SecretBox(loadMasterKey(config)), { name: destination }, { projectIds: null });
        const share = (s: { id: string; uniqueBytes: bigint; sharedBytes: bigint; totalBytes: bigint; exact: { numerator: bigint; denominator: bigint } }) => ({
          id: s.id, uniqueBytes: String(s.uniqueBytes), sharedBytes: String(s.sharedBytes), totalBytes: String(s.totalBytes),
          exact: `${s.exact.numerator}/${s.exact.denominator}`,
        });
        process.stdout.write(`${JSON.stringify({
          destination: a.destinationName, storedTotal: String(a.storedTotal), chunks: a.chunks, backups: a.backups, skipped: a.skipped,
          instances: a.instances.map((i) => ({ ...share(i), projectId: i.projectId })),
          projects: a.projects.map(share),
        }, null, 2)}\n`);
        return 0;
      } catch (e) {
        if (e instanceof AttributionSourceError) {
          process.stderr.write(`strongbox billing attribution: ${e.message}\n`);
          return 1;
        }
        throw e;
      }
    }
    if (sub === 'backfill') await backfillFromBackups(em);
    else await rebuildDailyRollups(em);
    const [row] = await em.execute<{ intervals: string; daily: string }[]>(`select (select count(*) from usage_interval) as intervals, (select count(*) from usage_daily) as daily`);
    process.stdout.write(`${JSON.stringify({ intervals: Number(row!.intervals), dailyRows: Number(row!.daily) })}\n`);
    return 0;
  } finally {
    await db.close();
  }
}
