// `strongbox repo …` without a TypeScript loader: the repository CLI (src/engine/repository/cli.ts
// and what it imports) is bundled to one plain-JS module by esbuild at start (~0.1 s) and run as
// is. tsx's loader thread alone weighs ~40 MB for the whole run, which a long backup or restore
// next to a VM should not pay. npm packages stay external (resolved from node_modules as usual).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

// esbuild's buildSync otherwise keeps a worker thread (~30 MB) alive for the whole run.
process.env.ESBUILD_WORKER_THREADS ??= '0';
const { buildSync } = (await import('esbuild')).default;
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const here = path.join(root, 'src/engine/repository');
const dir = path.join(root, 'node_modules/.cache/strongbox');
fs.mkdirSync(dir, { recursive: true });
// Split at dynamic imports: the S3 and Swift destinations (and the AWS SDK, ~27 MB of heap) load
// only when a destination of theirs is opened, not for every file-system backup or restore.
const out = path.join(dir, `repo-cli-${process.pid}`);
buildSync({
  entryPoints: { cli: path.join(here, 'cli.ts') },
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  outdir: out,
  entryNames: '[name]',
  // workers.ts finds worker-thread.ts next to itself.
  define: { 'import.meta.url': JSON.stringify(pathToFileURL(path.join(here, 'workers.ts')).href) },
  logLevel: 'silent',
});
// The split parts load lazily, so the folder stays until the process exits.
process.on('exit', () => fs.rmSync(out, { recursive: true, force: true }));
const cli = await import(pathToFileURL(path.join(out, 'cli.js')).href);
const code = await cli.run(process.argv.slice(3));
process.exit(typeof code === 'number' ? code : 0);
