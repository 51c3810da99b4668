// One PostgreSQL for the whole run: the server in DATABASE_URL, or an embedded one in a
// temporary folder. Each test file then makes its own database on it (test/helpers/database.ts).
// Every test process also appends its log lines (debug level) to one file; at the end the file
// is searched for every secret the suite used, and a leak fails the run.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres } from '../src/db/embedded-postgres.ts';
import { leakedSecrets } from './helpers/secret-registry.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    adminDatabaseUrl: string;
  }
}

/** Set before the test processes start, so each inherits them. */
function captureLogs(): () => void {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'strongbox-test-logs-'));
  const logFile = path.join(dir, 'suite.log');
  const secretsFile = path.join(dir, 'secrets.jsonl');
  Object.assign(process.env, { STRONGBOX_LOG_FILE: logFile, STRONGBOX_LOG_LEVEL: 'debug', STRONGBOX_TEST_SECRETS_FILE: secretsFile });
  return () => {
    const logs = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
    const registered = existsSync(secretsFile) ? readFileSync(secretsFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as string) : [];
    const leaked = leakedSecrets(logs, registered);
    if (leaked.length > 0) {
      // Kept for reading; the secrets themselves are not printed (they may be real lab credentials).
      // vitest only prints a teardown error: the exit code is what fails CI.
      process.exitCode = 1;
      const lines = logs.split('\n').flatMap((l, i) => (leakedSecrets(l, leaked).length > 0 ? [i + 1] : []));
      throw new Error(`SECRET LEAK: ${leaked.length} secret(s) used by the suite appear in its logs: ${logFile}, lines ${lines.slice(0, 20).join(', ')}`);
    }
    rmSync(dir, { recursive: true, force: true });
  };
}

/**
 * embedded-postgres (async-exit-hook) answers 'beforeExit' with process.exit(0), which would
 * overwrite the exit code vitest set for failed tests: keep the code it had then.
 */
function keepExitCode(): void {
  let intended: string | number | undefined;
  process.once('beforeExit', () => (intended = process.exitCode));
  process.once('exit', () => {
    if (intended) process.exitCode = intended;
  });
}

export default async function setup(project: TestProject) {
  keepExitCode();
  const checkLogs = captureLogs();
  if (process.env.DATABASE_URL) {
    project.provide('adminDatabaseUrl', process.env.DATABASE_URL);
    return checkLogs;
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'strongbox-test-pg-'));
  const pg = await startEmbeddedPostgres(dir, { ephemeral: true });
  project.provide('adminDatabaseUrl', pg.url);
  return async () => {
    await pg.stop();
    rmSync(dir, { recursive: true, force: true });
    checkLogs();
  };
}
