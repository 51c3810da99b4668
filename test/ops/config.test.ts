// Configuration: every wrong setting stops the service at start with a message naming the
// variable and what is allowed; the README's table is the schema's.
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, configurationTable, loadConfig, settings } from '../../src/config.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { startStrongbox } from '../helpers/strongbox-process.ts';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'sb-config-'));
const problems = (env: NodeJS.ProcessEnv): string[] => {
  try {
    loadConfig(env);
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  return [];
};

describe('configuration', () => {
  it('serve with a bad value exits 2 naming the variable, before touching the database or the data folder', async () => {
    const dataDir = tmp();
    const serve = startStrongbox(['serve'], {
      STRONGBOX_PORT: 'abc',
      // Unreachable: touching it would fail differently.
      DATABASE_URL: 'postgres://nobody:secret@127.0.0.1:1/none',
      STRONGBOX_DATA_DIR: dataDir,
    });
    expect(await serve.exited).toEqual({ code: 2, signal: null });
    expect(serve.stderr()).toContain('STRONGBOX_PORT: must be an integer from 0 to 65535, got "abc"');
    expect(serve.stderr()).not.toContain('secret');
    expect(readdirSync(dataDir)).toEqual([]);
  });

  it('worker with a bad value exits 2 naming it', async () => {
    const worker = startStrongbox(['worker'], { STRONGBOX_SHUTDOWN_GRACE_SECONDS: '-1', DATABASE_URL: 'postgres://127.0.0.1:1/none' });
    expect(await worker.exited).toEqual({ code: 2, signal: null });
    expect(worker.stderr()).toContain('STRONGBOX_SHUTDOWN_GRACE_SECONDS: must be an integer from 0 to 3600, got "-1"');
  });

  it('lists every wrong setting; never echoes a secret one', () => {
    expect(problems({ STRONGBOX_LOG_LEVEL: 'loud', STRONGBOX_TOKEN_TTL_SECONDS: '5', STRONGBOX_MASTER_KEY: 'too-short-key', DATABASE_URL: 'mysql://u:pw@db/x' })).toEqual([
      'DATABASE_URL: must be a postgres:// or postgresql:// URL',
      'STRONGBOX_MASTER_KEY: must be 32 bytes, as 64 hex digits or base64',
      'STRONGBOX_TOKEN_TTL_SECONDS: must be an integer from 30 to 86400, got "5"',
      'STRONGBOX_LOG_LEVEL: must be one of debug, info, warn, error, got "loud"',
    ]);
    expect(problems({ STRONGBOX_PORT: '80.5' })).toEqual(['STRONGBOX_PORT: must be an integer from 0 to 65535, got "80.5"']);
  });

  it('defaults apply to unset and empty variables', () => {
    const config = loadConfig({ STRONGBOX_PORT: '', STRONGBOX_SHUTDOWN_GRACE_SECONDS: ' 7 ' });
    expect(config).toMatchObject({ port: 4000, host: '127.0.0.1', shutdownGraceSeconds: 7, tokenTtlSeconds: 900, logLevel: 'info', dataDir: path.resolve('data') });
    expect(config.databaseUrl).toBeUndefined();
    expect(config.proxyServerId).toBeUndefined();
  });

  it('reads STRONGBOX_CONFIG_FILE under the environment; an unknown name or a missing file is an error', () => {
    const dir = tmp();
    const file = path.join(dir, 'strongbox.env');
    writeFileSync(file, '# service settings\nSTRONGBOX_PORT=4100\nSTRONGBOX_PROXY_SERVER_ID="proxy-1"\nSTRONGBOX_TOKEN_ISSUER=from-file\n');
    const config = loadConfig({ STRONGBOX_CONFIG_FILE: file, STRONGBOX_TOKEN_ISSUER: 'from-env' });
    expect(config).toMatchObject({ port: 4100, proxyServerId: 'proxy-1', tokenIssuer: 'from-env' });

    writeFileSync(file, 'STRONGBOX_PROT=4100\n');
    expect(problems({ STRONGBOX_CONFIG_FILE: file })[0]).toMatch(new RegExp(`^STRONGBOX_PROT \\(in ${file}\\): not a setting; allowed: DATABASE_URL, STRONGBOX_DATA_DIR`));
    expect(problems({ STRONGBOX_CONFIG_FILE: path.join(dir, 'missing.env') })).toEqual([
      `STRONGBOX_CONFIG_FILE: must be a readable dotenv file, got ${JSON.stringify(path.join(dir, 'missing.env'))} (ENOENT)`,
    ]);
  });

  it('a log file named only in STRONGBOX_CONFIG_FILE receives the JSON lines, stdout none', async () => {
    const dir = tmp();
    const logFile = path.join(dir, 'worker.log');
    const db = await createTestDatabase();
    const configFile = path.join(dir, 'strongbox.env');
    writeFileSync(configFile, `STRONGBOX_LOG_FILE=${logFile}\n`);
    const worker = startStrongbox(['worker'], { STRONGBOX_CONFIG_FILE: configFile, DATABASE_URL: db.url });
    try {
      await worker.waitForOutput(/data mover \S+ running/);
      worker.child.kill('SIGTERM');
      expect((await worker.exited).code).toBe(0);
    } finally {
      worker.child.kill('SIGKILL');
      await db.drop();
    }
    const lines = readFileSync(logFile, 'utf8').split('\n').filter(Boolean);
    // The suite's secret scan reads these lines too.
    if (process.env.STRONGBOX_LOG_FILE) appendFileSync(process.env.STRONGBOX_LOG_FILE, lines.map((l) => `${l}\n`).join(''));
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.map((l) => JSON.parse(l).msg)).toEqual(expect.arrayContaining(['data mover stopped: done', 'shutdown complete']));
    expect(worker.stdout().split('\n').filter((l) => l.startsWith('{'))).toEqual([]);
  });

  it("the README's configuration table lists exactly the schema's variables with their defaults", () => {
    const readme = readFileSync(path.resolve(import.meta.dirname, '../../README.md'), 'utf8');
    const section = readme.split(/^## /m).find((s) => s.startsWith('Configuration\n'));
    expect(section, 'README has a "## Configuration" section').toBeDefined();
    const documented = [...section!.matchAll(/^\| `(\w+)` \|/gm)].map((m) => m[1]);
    expect(documented).toEqual(Object.keys(settings));
    // The whole table, defaults and allowed values included (regenerate: configurationTable()).
    expect(section).toContain(configurationTable());
  });
});
