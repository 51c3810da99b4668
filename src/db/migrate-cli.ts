// `strongbox migrate` applies pending migrations; `--create` writes a new one from the
// difference between the entities and the database (for developers).
import { MikroORM } from '@mikro-orm/postgresql';
import { loadConfig } from '../config.ts';
import { resolveDatabaseUrl } from './database.ts';
import { ormOptions } from './orm.ts';

export async function run(args: string[]) {
  const server = await resolveDatabaseUrl(loadConfig());
  const orm = await MikroORM.init(ormOptions(server.url));
  try {
    const migrator = orm.getMigrator();
    if (args.includes('--create')) {
      await migrator.up();
      const name = args[args.indexOf('--create') + 1];
      const result = await migrator.createMigration(undefined, false, false, name && !name.startsWith('-') ? name : undefined);
      process.stdout.write(result.fileName ? `created ${result.fileName}\n` : 'no changes\n');
    } else {
      const applied = await migrator.up();
      process.stdout.write(`applied ${applied.length} migration(s)\n`);
    }
  } finally {
    await orm.close();
    await server.stop();
  }
}
