// The repository facade: the one entry point for the CLI and the task engine.
//
//   const repo = await Repository.open(await openBackend(url), parseMasterKey(env.STRONGBOX_MASTER_KEY));
//   const result = await repo.backup([{ name: 'vda', source }], { tag, parent, metadata, onProgress, signal });
//   await repo.restore(result.id, 0, { kind: 'file', path: '/restore/vda.raw' });
//   await repo.close();
//
// Layers: Backend (where bytes live) ↔ Repository (config, keys, index, packs, sealed objects) ↔
// backup.ts / restore.ts / verify.ts / prune.ts (what a backup is and how it is kept).
import type { Backend } from '../destinations/backend.ts';
import { runBackup, type BackupOptions, type BackupResult, type DiskInput } from './backup.ts';
import { decodeRecord, type BackupRecord } from './backup-record.ts';
import { ChunkIndex } from './chunk-index.ts';
import { RepositoryError } from './errors.ts';
import {
  DEFAULT_CHUNK_SIZE,
  DEFAULT_PACK_SIZE,
  DEFAULT_ZSTD_LEVEL,
  FORMAT_NAME,
  FORMAT_VERSION,
  MAX_CHUNK_SIZE,
  MIN_CHUNK_SIZE,
  layout,
  randomName,
  type RepositoryConfig,
} from './format.ts';
import { createKeyFile, equalHex, macHex, openKeyFile, type RepositoryKeys } from './keys.ts';
import { Lock, type LockKind } from './locks.ts';
import { Manifest } from './manifest.ts';
import { getSealed, openSealed } from './objects.ts';
import { planPrune, runPrune, type PruneOptions, type PrunePlan, type PruneResult } from './prune.ts';
import { openDiskChunks, runRestore, type DiskChunks, type RestoreOptions, type RestoreResult, type RestoreTarget } from './restore.ts';
import { runVerify, type VerifyOptions, type VerifyReport } from './verify.ts';
import { WorkerPool } from './workers.ts';

export type InitOptions = {
  /** 32 bytes (parseMasterKey). */
  masterKey: Buffer;
  /** Fixed chunk size in bytes (power of two, 64 KiB..16 MiB); default 1 MiB. */
  chunkSize?: number;
  /** Packs are closed at this size; default 16 MiB. */
  packSize?: number;
  /** zstd level; default 1. */
  compressionLevel?: number;
};

export type OpenOptions = {
  /** Worker threads for hashing/compression/encryption; default: one per core. */
  workers?: number;
  /** How long backup/restore/prune wait for a conflicting lock; default 10 minutes. */
  lockWaitMs?: number;
  /** How often a held lock is refreshed; without a refresh it is stale for every host after
   *  5 × this, and its holder gives up after 2.5 × this. Default 60 s (tests shorten it). */
  lockRefreshMs?: number;
};

export type { BackupOptions, BackupResult, DiskInput, BackupProgress } from './backup.ts';
export type { DiskChunks, RestoreOptions, RestoreResult, RestoreTarget } from './restore.ts';
export type { VerifyOptions, VerifyReport } from './verify.ts';
export type { PruneOptions, PrunePlan, PruneResult } from './prune.ts';
export type { BackupRecord, DiskRecord } from './backup-record.ts';
export type { DiskSource, Extent } from './disk-source.ts';
export { FileDiskSource } from './disk-source.ts';

export class Repository {
  index = new ChunkIndex();
  /** Index objects that failed to load (verify names them). */
  damagedIndexes: RepositoryError[] = [];
  private workerPool: WorkerPool | null = null;

  private constructor(
    readonly backend: Backend,
    readonly config: RepositoryConfig,
    readonly keys: RepositoryKeys,
    readonly options: OpenOptions,
  ) {}

  get location(): string {
    return this.backend.location;
  }

  /** Creates a repository in an empty destination; refuses (ALREADY_EXISTS) if it holds anything. */
  static async init(backend: Backend, opts: InitOptions, openOpts: OpenOptions = {}): Promise<Repository> {
    const chunkSize = opts.chunkSize ?? DEFAULT_CHUNK_SIZE;
    if (!Number.isInteger(chunkSize) || chunkSize < MIN_CHUNK_SIZE || chunkSize > MAX_CHUNK_SIZE || (chunkSize & (chunkSize - 1)) !== 0) {
      throw RepositoryError.invalid(`chunk size ${chunkSize} must be a power of two between ${MIN_CHUNK_SIZE} and ${MAX_CHUNK_SIZE}`);
    }
    if (opts.masterKey?.length !== 32) throw RepositoryError.badMasterKey('it is not 32 bytes');
    if (await backend.stat(layout.config)) throw RepositoryError.alreadyExists(backend.location);
    for await (const _ of backend.list('')) throw RepositoryError.alreadyExists(backend.location);

    const id = randomName(16);
    const { file, keys } = createKeyFile(opts.masterKey, id);
    const config: RepositoryConfig = {
      format: FORMAT_NAME,
      version: FORMAT_VERSION,
      id,
      created: new Date().toISOString(),
      chunkSize,
      packSize: opts.packSize ?? DEFAULT_PACK_SIZE,
      compression: { algorithm: 'zstd', level: opts.compressionLevel ?? DEFAULT_ZSTD_LEVEL },
      encryption: { algorithm: 'aes-256-gcm', ids: 'hmac-sha256' },
    };
    config.mac = macHex(keys.idKey, JSON.stringify(config));
    // Key first, config last: a destination with a config is a complete repository.
    await backend.put(layout.key(randomName(8)), Buffer.from(JSON.stringify(file, null, 2)));
    await backend.put(layout.config, Buffer.from(JSON.stringify(config, null, 2)));
    return new Repository(backend, config, keys, openOpts);
  }

  /** Opens a repository: NOT_A_REPOSITORY, UNSUPPORTED_VERSION, WRONG_KEY or DAMAGED when it cannot. */
  static async open(backend: Backend, masterKey: Buffer, opts: OpenOptions = {}): Promise<Repository> {
    const loc = backend.location;
    let raw: Buffer;
    try {
      raw = await backend.get(layout.config);
    } catch (e) {
      if ((e as { code?: string }).code === 'NOT_FOUND') throw RepositoryError.notARepository(loc);
      throw e;
    }
    let config: RepositoryConfig;
    try {
      config = JSON.parse(raw.toString('utf8'));
    } catch {
      throw RepositoryError.foreign(loc, 'not JSON');
    }
    if (config?.format !== FORMAT_NAME) throw RepositoryError.foreign(loc, `format is ${JSON.stringify(config?.format)}`);
    if (config.version !== FORMAT_VERSION) throw RepositoryError.unsupportedVersion(loc, config.version);

    let keys: RepositoryKeys | null = null;
    let firstError: RepositoryError | null = null;
    for await (const o of backend.list(layout.keys)) {
      try {
        keys = openKeyFile(loc, o.key, await backend.get(o.key), masterKey, config.id);
        break;
      } catch (e) {
        if (!(e instanceof RepositoryError)) throw e;
        if (!firstError || firstError.code === 'WRONG_KEY') firstError = e;
      }
    }
    if (!keys) throw firstError ?? RepositoryError.missingObject(loc, layout.keys, 'the repository has no key file');

    const { mac, ...rest } = config;
    if (!mac || !equalHex(mac, macHex(keys.idKey, JSON.stringify(rest)))) {
      throw RepositoryError.damaged(loc, layout.config, 'its MAC does not match: the config was altered');
    }
    const repo = new Repository(backend, config, keys, opts);
    await repo.loadIndex();
    return repo;
  }

  /** (Re)loads every index object. Backups and restores call it after taking their lock, so they
   *  never rely on packs that a prune removed since the repository was opened. */
  async loadIndex(): Promise<void> {
    const names: string[] = [];
    for await (const o of this.backend.list(layout.index)) names.push(o.key);
    const index = new ChunkIndex();
    const damaged: RepositoryError[] = [];
    await forEachLimit(names, 8, async (key) => {
      try {
        index.addObject(key, await getSealed(this.backend, this.keys.dataKey, key));
      } catch (e) {
        if (e instanceof RepositoryError) damaged.push(e);
        else if ((e as { code?: string }).code === 'NOT_FOUND') return; // removed by a prune meanwhile
        else damaged.push(RepositoryError.damaged(this.location, key, (e as Error).message, e));
      }
    });
    this.index = index;
    this.damagedIndexes = damaged;
  }

  get pool(): WorkerPool {
    this.workerPool ??= new WorkerPool(this.keys, this.config.compression.level, this.options.workers);
    return this.workerPool;
  }

  async lock(kind: LockKind, operation: string, signal?: AbortSignal): Promise<Lock> {
    return Lock.acquire(this.backend, kind, operation, { waitMs: this.options.lockWaitMs ?? 10 * 60_000, refreshMs: this.options.lockRefreshMs, signal });
  }

  /** Backs up disks as one new backup; see backup.ts for the options (parent, changed extents…). */
  backup(disks: DiskInput[], opts: BackupOptions = {}): Promise<BackupResult> {
    return runBackup(this, disks, opts);
  }

  /** Restores one disk (by position or name) of a backup to a sparse file, block device or stream. */
  restore(backupId: string, disk: number | string, target: RestoreTarget, opts: RestoreOptions = {}): Promise<RestoreResult> {
    return runRestore(this, backupId, disk, target, opts);
  }

  /** One disk of a backup chunk by chunk (ids, checks, verified bytes on demand): see restore.ts. */
  diskChunks(backupId: string, disk: number | string, signal?: AbortSignal): Promise<DiskChunks> {
    return openDiskChunks(this, backupId, disk, signal);
  }

  /** Every complete backup, oldest first. Damaged records are reported by verify, skipped here. */
  async list(): Promise<BackupRecord[]> {
    const out: BackupRecord[] = [];
    const keys: string[] = [];
    for await (const o of this.backend.list(layout.backups)) keys.push(o.key);
    await forEachLimit(keys, 8, async (key) => {
      try {
        out.push(await this.readRecordObject(key));
      } catch (e) {
        if ((e as { code?: string }).code === 'DAMAGED' || (e as { code?: string }).code === 'MISSING_OBJECT') return;
        throw e;
      }
    });
    return out.sort((a, b) => a.time.localeCompare(b.time) || a.id.localeCompare(b.id));
  }

  async getBackup(id: string): Promise<BackupRecord> {
    if (!/^[0-9A-Za-z-]+$/.test(id)) throw RepositoryError.backupNotFound(this.location, id);
    if (!(await this.backend.stat(layout.backup(id)))) throw RepositoryError.backupNotFound(this.location, id);
    return this.readRecordObject(layout.backup(id));
  }

  async readRecordObject(key: string): Promise<BackupRecord> {
    const plain = await getSealed(this.backend, this.keys.dataKey, key);
    try {
      return decodeRecord(plain);
    } catch (e) {
      throw RepositoryError.damaged(this.location, key, (e as Error).message, e);
    }
  }

  async readManifest(key: string): Promise<Manifest> {
    const plain = await getSealed(this.backend, this.keys.dataKey, key);
    try {
      return Manifest.decode(plain);
    } catch (e) {
      throw RepositoryError.damaged(this.location, key, (e as Error).message, e);
    }
  }

  openObject(key: string, bytes: Buffer): Buffer {
    return openSealed(this.location, this.keys.dataKey, key, bytes);
  }

  /** Checks the structure (and with readData every chunk) of the repository; never throws for damage. */
  verify(opts: VerifyOptions = {}): Promise<VerifyReport> {
    return runVerify(this, opts);
  }

  /** Which backups `prune(opts)` would keep and forget (oldest first); changes nothing. */
  planPrune(opts: PruneOptions): Promise<PrunePlan> {
    return planPrune(this, opts);
  }

  /** Forgets backups by retention and garbage-collects what no kept backup references. */
  prune(opts: PruneOptions): Promise<PruneResult> {
    return runPrune(this, opts);
  }

  async close(): Promise<void> {
    await this.workerPool?.close();
    this.workerPool = null;
  }
}

/** Runs fn over items with at most `limit` at a time. */
export async function forEachLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const run = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, run));
}
