// `strongbox signing-key rotate|list`: start signing tokens with a new key (the previous ones
// keep verifying until the tokens they signed have expired), or list the keys.
import { loadConfig } from '../config.ts';
import { SigningKey } from '../db/entities/index.ts';
import { systemFork } from '../db/orm.ts';
import { startServices } from '../services.ts';

export async function run(argv: string[]): Promise<number> {
  const [sub] = argv;
  if (sub !== 'rotate' && sub !== 'list') {
    process.stderr.write('usage: strongbox signing-key rotate|list\n');
    return 2;
  }
  const services = await startServices(loadConfig());
  try {
    if (sub === 'rotate') {
      process.stdout.write(`${JSON.stringify({ kid: await services.tokens.rotate() })}\n`);
    } else {
      const keys = await systemFork(services.orm).find(SigningKey, {}, { orderBy: { createdAt: 'asc' } });
      for (const k of keys) process.stdout.write(`${JSON.stringify({ kid: k.kid, alg: k.alg, createdAt: k.createdAt, retiredAt: k.retiredAt ?? null })}\n`);
    }
    return 0;
  } finally {
    await services.close();
  }
}
