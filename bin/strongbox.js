#!/usr/bin/env node
// `npx strongbox …`: run the TypeScript CLI through tsx, so no build step is needed.
// `strongbox repo …` runs without tsx (see repo-cli.js).
if (process.argv[2] === 'repo') {
  await import('./repo-cli.js');
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import(new URL('../src/main.ts', import.meta.url).href);
}
