// Lock objects (locks/<name>, plain JSON) keep prune's garbage collection away from running
// backups, restic-style:
//   - a backup holds a SHARED lock; any number of shared locks coexist;
//   - prune holds an EXCLUSIVE lock, which excludes every other lock.
// Acquire = put own lock object, THEN list locks/. If a conflicting live lock is listed, delete
// own lock and retry after a random pause (until the wait limit). Because both sides write before
// they list, two conflicting holders can never both proceed; at worst both back off and retry.
//
// Heartbeat, so that a lock left by a dead host does not block a destination for long, and a live
// one is never taken for dead: the holder refreshes its lock every `refreshMs` (new object first,
// then delete the old one), each object saying `expires` = its refresh time + STALE_AFTER_REFRESHES
// × refreshMs. Any host takes a lock past `expires` as stale (prune deletes it); a lock naming this
// host and a process that no longer exists is stale at once (kill -9). A holder that has not
// managed to refresh for half the stale timeout gives up: `signal` aborts and the operation stops
// before writing anything more, long before any other host could take its lock as stale.
import os from 'node:os';
import type { Backend } from '../destinations/backend.ts';
import { RepositoryError } from './errors.ts';
import { layout, randomName } from './format.ts';

export type LockKind = 'shared' | 'exclusive';
export type LockInfo = {
  kind: LockKind;
  operation: string;
  host: string;
  pid: number;
  /** When the holder took the lock. */
  created: string;
  /** When this object was written (the last heartbeat); absent in locks of older versions. */
  refreshed?: string;
  /** Stale for every host after this time. */
  expires: string;
};

export const DEFAULT_LOCK_REFRESH_MS = 60_000;
/** A lock not refreshed for this many refresh intervals is stale for every host. */
export const STALE_AFTER_REFRESHES = 5;

export class Lock {
  private refreshTimer: NodeJS.Timeout | null = null;
  private watchdog: NodeJS.Timeout | null = null;
  private refreshing: Promise<void> = Promise.resolve();
  private readonly lost = new AbortController();

  private constructor(
    private backend: Backend,
    private key: string,
    private info: LockInfo,
    private refreshMs: number,
  ) {}

  static async acquire(
    backend: Backend,
    kind: LockKind,
    operation: string,
    opts: { waitMs?: number; refreshMs?: number; signal?: AbortSignal } = {},
  ): Promise<Lock> {
    const refreshMs = opts.refreshMs ?? DEFAULT_LOCK_REFRESH_MS;
    const deadline = Date.now() + (opts.waitMs ?? 0);
    for (let attempt = 0; ; attempt++) {
      const now = Date.now();
      const info = lockInfo(kind, operation, now, now, refreshMs);
      const key = layout.lock(randomName());
      await backend.put(key, Buffer.from(JSON.stringify(info)));
      const conflict = await findConflict(backend, key, kind);
      if (!conflict) {
        const lock = new Lock(backend, key, info, refreshMs);
        lock.arm(now);
        lock.scheduleRefresh();
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

  /** Aborts (reason: a LOCK_LOST RepositoryError) once the lock could not be refreshed in time. */
  get signal(): AbortSignal {
    return this.lost.signal;
  }

  /** Throws if the lock was lost, or if `signal` (the caller's) was aborted. */
  check(signal?: AbortSignal): void {
    if (this.lost.signal.aborted) throw this.lost.signal.reason;
    if (signal?.aborted) throw RepositoryError.aborted();
  }

  /** Gives up at half the stale timeout after the last successful refresh. */
  private arm(refreshedAt: number) {
    if (this.watchdog) clearTimeout(this.watchdog);
    const giveUpAt = refreshedAt + (this.refreshMs * STALE_AFTER_REFRESHES) / 2;
    this.watchdog = setTimeout(() => this.lose(Date.now() - refreshedAt), Math.max(0, giveUpAt - Date.now()));
    this.watchdog.unref();
  }

  private lose(sinceMs: number) {
    this.stopTimers();
    this.lost.abort(RepositoryError.lockLost(this.backend.location, this.info.operation, sinceMs));
  }

  private scheduleRefresh() {
    this.refreshTimer = setTimeout(() => {
      this.refreshing = this.refresh()
        .catch(() => {}) // the watchdog decides when failed refreshes become fatal
        .finally(() => {
          if (this.refreshTimer && !this.lost.signal.aborted) this.scheduleRefresh();
        });
    }, this.refreshMs);
    this.refreshTimer.unref();
  }

  private async refresh() {
    const now = Date.now();
    const key = layout.lock(randomName());
    const info = lockInfo(this.info.kind, this.info.operation, Date.parse(this.info.created), now, this.refreshMs);
    await this.backend.put(key, Buffer.from(JSON.stringify(info)));
    if (this.lost.signal.aborted || !this.refreshTimer) {
      await this.backend.delete(key); // given up or released meanwhile: do not revive the lock
      return;
    }
    const old = this.key;
    this.key = key;
    this.info = info;
    this.arm(now);
    await this.backend.delete(old).catch(() => {}); // if it stays, it expires on its own
  }

  private stopTimers() {
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    if (this.watchdog) clearTimeout(this.watchdog);
    this.refreshTimer = null;
    this.watchdog = null;
  }

  async release(): Promise<void> {
    this.stopTimers();
    await this.refreshing;
    await this.backend.delete(this.key);
  }
}

function lockInfo(kind: LockKind, operation: string, created: number, refreshed: number, refreshMs: number): LockInfo {
  return {
    kind,
    operation,
    host: os.hostname(),
    pid: process.pid,
    created: new Date(created).toISOString(),
    refreshed: new Date(refreshed).toISOString(),
    expires: new Date(refreshed + STALE_AFTER_REFRESHES * refreshMs).toISOString(),
  };
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
  if (!(Date.parse(info.expires) >= now)) return true; // past expiry (or unreadable time)
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

function describe(i: LockInfo, now = Date.now()): string {
  const refreshed = i.refreshed ?? i.created;
  return `a ${i.kind} lock of "${i.operation}" held by host ${i.host} (pid ${i.pid}) for ${age(now - Date.parse(i.created))}, last refreshed ${age(now - Date.parse(refreshed))} ago`;
}

/** "3h 12m", "4m 05s", "12s". */
export function age(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s >= 3600) return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  if (s >= 60) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${s}s`;
}

function sleep(ms: number) {
  return new Promise((r) => setTimeout(r, ms));
}
