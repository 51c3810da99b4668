// `strongbox repo …`: the repository without API or database, for operators and disaster recovery.
// The key comes from STRONGBOX_MASTER_KEY only (never the command line), and is never printed.
import fs from 'node:fs/promises';
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import { openUntraced } from '../destinations/open.ts';
import { BackendError } from '../destinations/backend.ts';
import { FileDiskSource } from './disk-source.ts';
import { RepositoryError } from './errors.ts';
import { parseMasterKey } from './keys.ts';
import { Repository, type OpenOptions } from './repository.ts';
import { parseChangedExtents } from './changed-extents.ts';
import { hasRetentionRule, type RetentionRules } from '../retention.ts';
import type { RestoreTarget } from './restore.ts';

const USAGE = `usage:
  strongbox repo init    --destination URL [--chunk-size BYTES]
  strongbox repo backup  --destination URL --disk PATH [--disk PATH…] [--tag NAME]
                         [--parent BACKUP [--changed FILE…]]   (one FILE per --disk, in order)
  strongbox repo restore --destination URL --backup ID --disk N --to PATH [--verify]   (PATH "-" = stdout;
                         --verify recomputes every chunk's id, as verify --read-data does)
  strongbox repo verify  --destination URL [--read-data]
  strongbox repo list    --destination URL [--json]
  strongbox repo prune   --destination URL [--dry-run] RULE…   (at least one RULE; per tag)
    RULE: --keep-last N | --keep-hourly N | --keep-daily N | --keep-weekly N | --keep-monthly N
          | --keep-yearly N | --keep-within DURATION (e.g. 1y6m, 14d, 36h; units y m w d h)
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
  verify: { type: 'boolean' },
  'keep-last': { type: 'string' },
  'keep-hourly': { type: 'string' },
  'keep-daily': { type: 'string' },
  'keep-weekly': { type: 'string' },
  'keep-monthly': { type: 'string' },
  'keep-yearly': { type: 'string' },
  'keep-within': { type: 'string' },
  'dry-run': { type: 'boolean' },
  changed: { type: 'string', multiple: true },
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
    const backend = await openUntraced(v.destination, process.env);
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
            return await backup(repo, v.disk ?? [], v.tag, v.parent, v.changed);
          case 'restore':
            return await restore(repo, v.backup, v.disk?.[0], v.to, !!v.verify);
          case 'verify':
            return await verify(repo, !!v['read-data']);
          case 'list':
            return await list(repo, !!v.json);
          default:
            return await prune(repo, v);
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

async function backup(repo: Repository, paths: string[], tag?: string, parent?: string, changed?: string[]): Promise<number> {
  if (paths.length === 0) throw new UsageError('at least one --disk PATH is required');
  if (changed && !parent) throw new UsageError('--changed FILE needs --parent BACKUP (the extents changed since that backup)');
  if (changed && changed.length !== paths.length) throw new UsageError(`give one --changed FILE per --disk PATH (${paths.length} disks, ${changed.length} files)`);
  const sources: FileDiskSource[] = [];
  try {
    for (const p of paths) sources.push(await FileDiskSource.open(p));
    const changedExtents = changed ? await Promise.all(changed.map(async (f, i) => parseChangedExtents(await readChangedFile(f), f, sources[i].size))) : undefined;
    const bar = progressBar('backup');
    const ac = new AbortController();
    const onSignal = () => ac.abort();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      const r = await repo.backup(
        sources.map((s, i) => ({ name: s.path, source: s, changedExtents: changedExtents?.[i] })),
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

async function readChangedFile(file: string): Promise<string> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (e) {
    throw RepositoryError.invalid(`--changed ${file} cannot be read: ${(e as Error).message}`);
  }
}

type Values = Record<string, string | boolean | string[] | undefined>;

async function prune(repo: Repository, v: Values): Promise<number> {
  const count = (name: string) => (v[name] === undefined ? undefined : positiveInt(v[name] as string, `--${name}`, true));
  const now = new Date();
  const retention: RetentionRules = {
    keepLast: count('keep-last'),
    keepHourly: count('keep-hourly'),
    keepDaily: count('keep-daily'),
    keepWeekly: count('keep-weekly'),
    keepMonthly: count('keep-monthly'),
    keepYearly: count('keep-yearly'),
    keepWithinMs: v['keep-within'] === undefined ? undefined : durationMs(v['keep-within'] as string, now),
  };
  if (!hasRetentionRule(retention)) throw new UsageError('prune needs at least one rule: --keep-last, --keep-hourly, --keep-daily, --keep-weekly, --keep-monthly, --keep-yearly or --keep-within');
  if (v['dry-run']) {
    const plan = await repo.planPrune({ retention, now });
    for (const r of plan.forgotten) process.stderr.write(`would forget ${r.id}  ${r.time}  ${r.tag ?? '-'}\n`);
    out({ dryRun: true, kept: plan.kept.map((r) => r.id), forgotten: plan.forgotten.map((r) => r.id) });
    return 0;
  }
  out(await repo.prune({ retention, now }));
  return 0;
}

/** "1y6m", "14d", "36h", "2w3d" → milliseconds back from `now` (calendar years and months, UTC). */
function durationMs(text: string, now: Date): number {
  const m = /^(?:(\d+)y)?(?:(\d+)m)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?$/.exec(text);
  if (!m || text === '') throw new UsageError(`--keep-within needs a duration like 1y6m, 14d or 36h (units y m w d h), got ${JSON.stringify(text)}`);
  const [y, mo, w, d, h] = m.slice(1).map((x) => Number(x ?? 0));
  const t = new Date(now);
  t.setUTCFullYear(t.getUTCFullYear() - y, t.getUTCMonth() - mo, t.getUTCDate() - 7 * w - d);
  t.setUTCHours(t.getUTCHours() - h);
  return now.getTime() - t.getTime();
}

async function restore(repo: Repository, backupId?: string, disk?: string, to?: string, verify = false): Promise<number> {
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
    const r = await repo.restore(backupId, d, target, { verify, onProgress: bar ? (p) => (bar.setTotal(p.bytesTotal), bar.update(p.bytesDone)) : undefined });
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
