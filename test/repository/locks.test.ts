// Lock heartbeat across hosts (locks.ts): a lock another host left behind goes once its refreshes
// stopped; a live one blocks prune with a message naming host and age; a running backup refreshes
// its lock, and gives up (writing no record) when it cannot; so does a running restore (it stops
// reading and leaves no file).
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsBackend } from '../../src/engine/destinations/fs.ts';
import { readLock, type LockInfo } from '../../src/engine/repository/locks.ts';
import { RepositoryError } from '../../src/engine/repository/errors.ts';
import { FileDiskSource, Repository } from '../../src/engine/repository/repository.ts';
import { runCli, until } from './cli-helpers.ts';
import { GatedSource, MASTER_KEY, MiB, listObjects, makeImage, newRepository, sha256File, tempDir } from './helpers.ts';

describe('lock heartbeat', () => {
  let dir: string;
  let root: string;
  let image: string;
  const dest = () => `file://${root}`;
  const otherHostLock = (minutesHeld: number, secondsSinceRefresh: number, staleAfterMs: number) => {
    const refreshed = Date.now() - secondsSinceRefresh * 1000;
    return {
      kind: 'shared',
      operation: 'backup',
      host: 'backup-host-7.example',
      pid: 4242,
      created: new Date(Date.now() - minutesHeld * 60_000).toISOString(),
      refreshed: new Date(refreshed).toISOString(),
      expires: new Date(refreshed + staleAfterMs).toISOString(),
    };
  };

  beforeAll(async () => {
    dir = await tempDir();
    root = path.join(dir, 'repo');
    image = path.join(dir, 'disk.raw');
    await makeImage(image, 4 * MiB + 999, [
      { offset: 0, length: 2 * MiB, kind: 'random' },
      { offset: 3 * MiB, length: MiB + 999, kind: 'text' },
    ]);
    const repo = await newRepository(dir);
    const src = await FileDiskSource.open(image);
    await repo.backup([{ name: 'vda', source: src }], { tag: 'vm' });
    await src.close();
    await repo.close();
  });
  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('a fresh lock of another host blocks prune with a clear error naming the host and the age', async () => {
    const backend = new FsBackend(root);
    await backend.put('locks/0123456789abcdef0123456789abcdef', Buffer.from(JSON.stringify(otherHostLock(2, 10, 5 * 60_000))));
    const before = await listObjects(dir);
    const r = await runCli(['prune', '--destination', dest(), '--keep-last', '0', '--lock-wait', '0']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/is locked by a shared lock of "backup" held by host backup-host-7\.example \(pid 4242\) for 2m \d\ds, last refreshed \d+s ago/);
    expect(await listObjects(dir)).toEqual(before); // nothing forgotten, nothing deleted
  });

  it('a lock another host stopped refreshing is stale for every host: prune takes over and removes it', async () => {
    const backend = new FsBackend(root);
    await backend.delete('locks/0123456789abcdef0123456789abcdef');
    // Held for an hour, last refreshed 6 minutes ago, stale 5 minutes after its last refresh.
    await backend.put('locks/fedcba9876543210fedcba9876543210', Buffer.from(JSON.stringify(otherHostLock(60, 360, 5 * 60_000))));
    const r = await runCli(['prune', '--destination', dest(), '--keep-last', '1', '--lock-wait', '0']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).removedLocks).toBe(1);
    expect(await listObjects(dir, 'locks')).toEqual([]);
  });

  it('a running backup refreshes its lock (new object, same creation time, later refresh and expiry)', async () => {
    // 1 s, not less: on a loaded machine a put (fsync + rename) can take a good part of it, and
    // a holder that misses 2.5 intervals gives up.
    const repo = await Repository.open(new FsBackend(root), MASTER_KEY, { lockRefreshMs: 1000 });
    const src = new GatedSource(await FileDiskSource.open(image));
    const running = repo.backup([{ name: 'vda', source: src }], { tag: 'vm' });
    await until(async () => src.reading);
    const backend = new FsBackend(root);
    // (Read as it stands: the heartbeat may replace the object between list and read.)
    let first = '';
    let firstInfo!: LockInfo;
    await until(async () => {
      first = (await listObjects(dir, 'locks'))[0]!;
      const info = await readLock(backend, first);
      if (info) firstInfo = info;
      return !!info;
    });
    expect(Date.parse(firstInfo.expires) - Date.parse(firstInfo.refreshed!)).toBe(5000); // 5 × the refresh interval
    let refreshed = firstInfo;
    await until(async () => {
      const keys = await listObjects(dir, 'locks');
      if (keys.length !== 1 || keys[0] === first) return false;
      const info = await readLock(backend, keys[0]);
      if (!info) return false;
      refreshed = info;
      return true;
    });
    expect(refreshed.created).toBe(firstInfo.created);
    expect(Date.parse(refreshed.refreshed!)).toBeGreaterThan(Date.parse(firstInfo.refreshed!));
    expect(refreshed).toMatchObject({ kind: 'shared', operation: 'backup', pid: process.pid });
    src.open();
    const done = await running;
    expect(await listObjects(dir, 'locks')).toEqual([]);
    const out = path.join(dir, 'restored.raw');
    await repo.restore(done.id, 0, { kind: 'file', path: out });
    expect(await sha256File(out)).toBe(await sha256File(image));
    await repo.close();
  });

  it('a backup that cannot refresh its lock stops before the lock could be stale, and no backup appears', async () => {
    const repo = await Repository.open(new FsBackend(root), MASTER_KEY, { lockRefreshMs: 100 });
    const before = (await repo.list()).map((r) => r.id);
    const src = new GatedSource(await FileDiskSource.open(image));
    const running = repo.backup([{ name: 'vda', source: src }], { tag: 'vm' });
    await until(async () => src.reading);
    // Once its last lock object is past its expiry any host may take the lock as stale; the
    // holder must have given up before (its watchdog timer is due earlier on this event loop).
    const giveBack = await locksUnwritableUntilStale(root);
    src.open();
    await expect(running).rejects.toMatchObject({ code: 'LOCK_LOST', message: expect.stringMatching(/backup stopped: its lock could not be refreshed for \d+s/) });
    await giveBack();
    expect((await repo.list()).map((r) => r.id)).toEqual(before);
    await repo.close();
    const v = await runCli(['verify', '--destination', dest()]);
    expect(v.code).toBe(0);
  });
  it('a restore that cannot refresh its lock stops with LOCK_LOST before the lock could be stale, and leaves no file', async () => {
    const lister = await Repository.open(new FsBackend(root), MASTER_KEY);
    const backupId = (await lister.list())[0]!.id;
    await lister.close();
    // Reads of pack data wait at a gate (the pool reads no pack itself: no localFile), which holds
    // the restore mid-way for as long as the test needs.
    let gate!: () => void;
    const opened = new Promise<void>((r) => (gate = r));
    let reading = false;
    class GatedBackend extends FsBackend {
      localFile = undefined as unknown as FsBackend['localFile'];
      async getRange(key: string, offset: number, length: number, into?: Buffer) {
        if (key.startsWith('data/')) {
          reading = true;
          await opened;
        }
        return super.getRange(key, offset, length, into);
      }
    }
    const repo = await Repository.open(new GatedBackend(root), MASTER_KEY, { lockRefreshMs: 100 });
    const out = path.join(dir, 'lost.raw');
    const running = repo.restore(backupId, 0, { kind: 'file', path: out });
    running.catch(() => {}); // awaited below
    await until(async () => reading);
    const giveBack = await locksUnwritableUntilStale(root);
    gate();
    const e = await running.then(() => null, (x: unknown) => x);
    expect(e).toBeInstanceOf(RepositoryError);
    expect(e).toMatchObject({ code: 'LOCK_LOST', message: expect.stringMatching(/restore stopped: its lock could not be refreshed for \d+s/) });
    await giveBack();
    await expect(fs.stat(out)).rejects.toThrow();
    await expect(fs.stat(`${out}.partial`)).rejects.toThrow();
    await repo.close();
  });
});

/**
 * The destination's locks/ becomes unwritable (every refresh fails from now on); resolves once
 * the lock objects held then are past their expiry. The returned function puts locks/ back.
 */
async function locksUnwritableUntilStale(root: string): Promise<() => Promise<void>> {
  const locks = path.join(root, 'locks');
  await fs.rename(locks, `${locks}.away`);
  await fs.writeFile(locks, 'not a folder');
  const away = new FsBackend(`${locks}.away`);
  const held = await Promise.all((await fs.readdir(`${locks}.away`)).filter((n) => !n.startsWith('.tmp-')).map((n) => readLock(away, n)));
  const expires = Math.max(...held.map((i) => Date.parse(i!.expires)));
  await until(async () => Date.now() > expires);
  return async () => {
    await fs.rm(locks);
    await fs.rename(`${locks}.away`, locks);
  };
}
