#!/usr/bin/env -S node --max-semi-space-size=1
// A young generation of 1 MiB semi-spaces (V8's default grows to 16): a backup or restore allocates
// little JavaScript garbage (its chunks live outside the heap), and on the 4 GiB bench the cap cut
// peak RSS by 10-15 MiB (e.g. day1 129 -> 115 MiB) at the same CPU time. The flag reaches the
// worker threads too. (Through the shebang: V8 sizes the heap before any script runs.)
// `npx strongbox …`: run the TypeScript CLI through tsx, so no build step is needed.
// `strongbox repo …` runs without tsx (see repo-cli.js).
if (process.argv[2] === 'repo') {
  await import('./repo-cli.js');
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import(new URL('../src/main.ts', import.meta.url).href);
}
