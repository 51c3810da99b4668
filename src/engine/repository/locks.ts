// Lock objects (locks/<name>, plain JSON) keep prune's garbage collection away from running
// backups, restic-style:
//   - a backup holds a SHARED lock; any number of shared locks coexist;
//   - prune holds an EXCLUSIVE lock, which excludes every other lock.
// Acquire = put own lock object, THEN list locks/. If a conflicting live lock is listed, delete
// own lock and retry after a random pause (until the wait limit). Because both sides write before
// they list, two conflicting holders can never both proceed; at worst both back off and retry.
// A holder refreshes its lock (new object first, then delete the old one) every expiry/3. A lock
// is stale (ignored, and deleted by prune) once past its expiry, or at once when it names this
// host and a process that no longer exists (kill -9).
import os from 'node:os';
import type { Backend } from '../destinations/backend.ts';
import { RepositoryError } from './errors.ts';
import { layout, randomName } from './format.ts';

export type LockKind = 'shared' | 'exclusive';
export type LockInfo = { kind: LockKind; operation: string; host: string; pid: number; created: string; expires: string };

export const DEFAULT_LOCK_EXPIRY_MS = 30 * 60_000;

export class Lock {
  private timer: NodeJS.Timeout | null = null;
  private refreshing: Promise<void> = Promise.resolve();

  private constructor(
    private backend: Backend,
    private key: string,
    private info: LockInfo,
    private expiryMs: number,
  ) {}

  static async acquire(
    backend: Backend,
    kind: LockKind,
    operation: string,
    opts: { waitMs?: number; expiryMs?: number; signal?: AbortSignal } = {},
  ): Promise<Lock> {
    const expiryMs = opts.expiryMs ?? DEFAULT_LOCK_EXPIRY_MS;
    const deadline = Date.now() + (opts.waitMs ?? 0);
    for (let attempt = 0; ; attempt++) {
      const info = lockInfo(kind, operation, expiryMs);
      const key = layout.lock(randomName());
      await backend.put(key, Buffer.from(JSON.stringify(info)));
      const conflict = await findConflict(backend, key, kind);
      if (!conflict) {
        const lock = new Lock(backend, key, info, expiryMs);
        lock.startRefresh();
        return lock;
      }
      await backend.delete(key);
      if (Date.now() >= deadline || opts.signal?.aborted) {
        if (opts.signal?.aborted) throw RepositoryError.aborted();
        throw RepositoryError.locked(backend.location, describe(conflict));
      }
      await sleep(Math.min(200 * 2 ** Math.min(attempt, 4), 3000) * (0.5 + Math.random()));
    }
  }

  private startRefresh() {
    this.timer = setInterval(() => {
      this.refreshing = this.refreshing.then(() => this.refresh()).catch(() => {});
    }, Math.max(1000, this.expiryMs / 3));
    this.timer.unref();
  }

  private async refresh() {
    const key = layout.lock(randomName());
    const info = lockInfo(this.info.kind, this.info.operation, this.expiryMs);
    await this.backend.put(key, Buffer.from(JSON.stringify(info)));
    const old = this.key;
    this.key = key;
    this.info = info;
    await this.backend.delete(old);
  }

  async release(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.refreshing;
    await this.backend.delete(this.key);
  }
}

function lockInfo(kind: LockKind, operation: string, expiryMs: number): LockInfo {
  const now = Date.now();
  return { kind, operation, host: os.hostname(), pid: process.pid, created: new Date(now).toISOString(), expires: new Date(now + expiryMs).toISOString() };
}

async function findConflict(backend: Backend, own: string, kind: LockKind): Promise<LockInfo | null> {
  for await (const o of backend.list(layout.locks)) {
    if (o.key === own) continue;
    const info = await readLock(backend, o.key);
    if (!info || isStale(info)) continue;
    if (kind === 'exclusive' || info.kind === 'exclusive') return info;
  }
  return null;
}

export async function readLock(backend: Backend, key: string): Promise<LockInfo | null> {
  try {
    const info = JSON.parse((await backend.get(key)).toString('utf8')) as LockInfo;
    return typeof info?.expires === 'string' && (info.kind === 'shared' || info.kind === 'exclusive') ? info : null;
  } catch {
    return null; // vanished meanwhile, or unreadable: not a live lock
  }
}

export function isStale(info: LockInfo, now = Date.now()): boolean {
  if (Date.parse(info.expires) < now) return true;
  if (info.host === os.hostname() && info.pid !== process.pid) {
    try {
      process.kill(info.pid, 0);
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === 'ESRCH';
    }
  }
  return false;
}

/** Deletes stale locks (prune, under its exclusive lock). */
export async function removeStaleLocks(backend: Backend, own?: string): Promise<number> {
  let n = 0;
  for await (const o of backend.list(layout.locks)) {
    if (o.key === own) continue;
    const info = await readLock(backend, o.key);
    if (!info || isStale(info)) {
      await backend.delete(o.key);
      n++;
    }
  }
  return n;
}

function describe(i: LockInfo): string {
  return `a ${i.kind} lock of "${i.operation}" (host ${i.host}, pid ${i.pid}, since ${i.created})`;
}

function sleep(ms: number) {
  return new Promise((r) => setTimeout(r, ms));
}
