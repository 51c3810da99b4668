import { createRequire } from 'node:module';
import { defineConfig } from 'vitest/config';

const require = createRequire(import.meta.url);

export default defineConfig({
  resolve: {
    // graphql 16 ships CJS and ESM; one copy only, or schema objects come "from another realm".
    alias: { graphql: require.resolve('graphql') },
  },
  test: {
    include: ['test/**/*.test.ts', 'billing/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    // Forks with tsx so the MikroORM migrator can import migrations/*.ts outside Vite.
    pool: 'forks',
    execArgv: ['--import', 'tsx'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    maxWorkers: 2,
  },
});
