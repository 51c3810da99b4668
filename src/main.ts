// CLI entry: `strongbox <command> …` (npm start runs `serve`).
const [command = 'serve', ...args] = process.argv.slice(2);

const commands: Record<string, () => Promise<{ run(args: string[]): Promise<number | void> }>> = {
  serve: () => import('./serve.ts'),
  worker: () => import('./worker.ts'),
  repo: () => import('./engine/repository/cli.ts'),
  migrate: () => import('./db/migrate-cli.ts'),
  billing: () => import('../billing/cli.ts'),
};

const load = commands[command];
if (!load) {
  process.stderr.write(`strongbox: unknown command ${JSON.stringify(command)}; commands: ${Object.keys(commands).join(', ')}\n`);
  process.exit(2);
}
const code = await (await load()).run(args);
process.exitCode = typeof code === 'number' ? code : 0;
