// `strongbox repo …`: the repository without API or database, for operators and disaster recovery.
// The key comes from STRONGBOX_MASTER_KEY only (never the command line), and is never printed.
import fs from 'node:fs/promises';
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import { openBackend } from '../destinations/index.ts';
import { BackendError } from '../destinations/backend.ts';
import { FileDiskSource } from './disk-source.ts';
import { RepositoryError } from './errors.ts';
import { parseMasterKey } from './keys.ts';
import { Repository, type OpenOptions } from './repository.ts';
import type { RestoreTarget } from './restore.ts';

const USAGE = `usage:
  strongbox repo init    --destination URL [--chunk-size BYTES]
  strongbox repo backup  --destination URL --disk PATH [--disk PATH…] [--tag NAME] [--parent BACKUP]
  strongbox repo restore --destination URL --backup ID --disk N --to PATH   (PATH "-" = stdout)
  strongbox repo verify  --destination URL [--read-data]
  strongbox repo list    --destination URL [--json]
  strongbox repo prune   --destination URL --keep-last N
common: [--lock-wait SECONDS] [--workers N]; the key comes from STRONGBOX_MASTER_KEY`;

class UsageError extends Error {}

const options = {
  destination: { type: 'string' },
  disk: { type: 'string', multiple: true },
  tag: { type: 'string' },
  parent: { type: 'string' },
  backup: { type: 'string' },
  to: { type: 'string' },
  'read-data': { type: 'boolean' },
  'keep-last': { type: 'string' },
  'chunk-size': { type: 'string' },
  'lock-wait': { type: 'string' },
  workers: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export async function run(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  try {
    if (!command || command === '--help' || command === '-h') {
      process.stdout.write(`${USAGE}\n`);
      return command ? 0 : 2;
    }
    let parsed;
    try {
      parsed = parseArgs({ args: rest, options, strict: true, allowPositionals: false });
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    const v = parsed.values;
    if (v.help) {
      process.stdout.write(`${USAGE}\n`);
      return 0;
    }
    if (!v.destination) throw new UsageError('--destination URL is required');
    const masterKey = parseMasterKey(process.env.STRONGBOX_MASTER_KEY);
    const openOpts: OpenOptions = {
      workers: v.workers ? positiveInt(v.workers, '--workers') : undefined,
      lockWaitMs: v['lock-wait'] ? positiveInt(v['lock-wait'], '--lock-wait', true) * 1000 : undefined,
    };
    const backend = await openBackend(v.destination);
    try {
      if (command === 'init') {
        const repo = await Repository.init(backend, { masterKey, chunkSize: v['chunk-size'] ? positiveInt(v['chunk-size'], '--chunk-size') : undefined }, openOpts);
        out({ repository: repo.config.id, destination: backend.location, chunkSize: repo.config.chunkSize });
        return 0;
      }
      const known = ['backup', 'restore', 'verify', 'list', 'prune'];
      if (!known.includes(command)) throw new UsageError(`unknown command ${JSON.stringify(command)}`);
      const repo = await Repository.open(backend, masterKey, openOpts);
      try {
        switch (command) {
          case 'backup':
            return await backup(repo, v.disk ?? [], v.tag, v.parent);
          case 'restore':
            return await restore(repo, v.backup, v.disk?.[0], v.to);
          case 'verify':
            return await verify(repo, !!v['read-data']);
          case 'list':
            return await list(repo, !!v.json);
          default: {
            if (v['keep-last'] === undefined) throw new UsageError('--keep-last N is required');
            const r = await repo.prune({ keepLast: positiveInt(v['keep-last'], '--keep-last', true) });
            out(r);
            return 0;
          }
        }
      } finally {
        await repo.close();
      }
    } finally {
      await backend.close();
    }
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`strongbox repo: ${e.message}\n${USAGE}\n`);
      return 2;
    }
    if (e instanceof RepositoryError || e instanceof BackendError) {
      process.stderr.write(`strongbox repo ${command}: ${e.message}\n`);
      return 1;
    }
    process.stderr.write(`strongbox repo ${command}: unexpected error: ${(e as Error)?.stack ?? String(e)}\n`);
    return 1;
  }
}

async function backup(repo: Repository, paths: string[], tag?: string, parent?: string): Promise<number> {
  if (paths.length === 0) throw new UsageError('at least one --disk PATH is required');
  const sources: FileDiskSource[] = [];
  try {
    for (const p of paths) sources.push(await FileDiskSource.open(p));
    const bar = progressBar('backup');
    const ac = new AbortController();
    const onSignal = () => ac.abort();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      const r = await repo.backup(
        sources.map((s) => ({ name: s.path, source: s })),
        { tag, parent, signal: ac.signal, onProgress: bar ? (p) => (bar.setTotal(p.bytesTotal), bar.update(p.bytesDone)) : undefined },
      );
      bar?.stop();
      out({
        id: r.id,
        readBytes: r.readBytes,
        storedBytes: r.storedBytes,
        seconds: r.seconds,
        logicalBytes: r.logicalBytes,
        newBytes: r.newBytes,
        zeroBytes: r.zeroBytes,
        parentBytes: r.parentBytes,
        newChunks: r.newChunks,
        dedupChunks: r.dedupChunks,
        disks: r.record.disks.map((d) => ({ name: d.name, size: d.size })),
      });
      return 0;
    } finally {
      bar?.stop();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  } finally {
    for (const s of sources) await s.close();
  }
}

async function restore(repo: Repository, backupId?: string, disk?: string, to?: string): Promise<number> {
  if (!backupId) throw new UsageError('--backup ID is required');
  if (!to) throw new UsageError('--to PATH is required');
  const d = disk === undefined ? 0 : /^\d+$/.test(disk) ? Number(disk) : disk;
  let target: RestoreTarget;
  if (to === '-') target = { kind: 'stream', stream: process.stdout };
  else {
    const st = await fs.stat(to).catch(() => null);
    target = st?.isBlockDevice() ? { kind: 'device', path: to } : { kind: 'file', path: to };
  }
  const bar = to === '-' ? null : progressBar('restore');
  try {
    const r = await repo.restore(backupId, d, target, { onProgress: bar ? (p) => (bar.setTotal(p.bytesTotal), bar.update(p.bytesDone)) : undefined });
    bar?.stop();
    if (to !== '-') out(r);
    return 0;
  } finally {
    bar?.stop();
  }
}

async function verify(repo: Repository, readData: boolean): Promise<number> {
  const bar = readData ? progressBar('verify') : null;
  const r = await repo.verify({ readData, onProgress: bar ? (p) => (bar.setTotal(p.bytesTotal), bar.update(p.bytesDone)) : undefined });
  bar?.stop();
  for (const w of r.warnings) process.stderr.write(`warning: ${w.object}: ${w.message}\n`);
  for (const e of r.errors) process.stderr.write(`error: ${e.message}\n`);
  out({ ok: r.ok, backups: r.backups, packs: r.packs, chunks: r.chunks, checkedBytes: r.checkedBytes, errors: r.errors.length, warnings: r.warnings.length });
  return r.ok ? 0 : 1;
}

async function list(repo: Repository, json: boolean): Promise<number> {
  const records = await repo.list();
  if (json) {
    for (const r of records) out(r);
    return 0;
  }
  process.stdout.write(`${'ID'.padEnd(26)} ${'TIME'.padEnd(24)} ${'TAG'.padEnd(16)} DISKS\n`);
  for (const r of records) {
    const disks = r.disks.map((d) => `${d.name} (${(d.size / 2 ** 20).toFixed(0)} MiB)`).join(', ');
    process.stdout.write(`${r.id.padEnd(26)} ${r.time.padEnd(24)} ${(r.tag ?? '-').padEnd(16)} ${disks}\n`);
  }
  return 0;
}

function progressBar(what: string): cliProgress.SingleBar | null {
  if (!process.stderr.isTTY) return null;
  const bar = new cliProgress.SingleBar(
    { stream: process.stderr, format: `${what} [{bar}] {percentage}% | {value}/{total} bytes | ETA {eta}s`, hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  bar.start(1, 0);
  return bar;
}

function positiveInt(s: string, name: string, allowZero = false): number {
  const n = Number(s);
  if (!Number.isInteger(n) || n < (allowZero ? 0 : 1)) throw new UsageError(`${name} must be a whole number${allowZero ? '' : ' > 0'}, got ${JSON.stringify(s)}`);
  return n;
}

function out(value: unknown) {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}
