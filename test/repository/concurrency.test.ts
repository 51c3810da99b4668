// Several writers on one destination: a prune never deletes chunks a running backup needs, and two
// backups at once both end complete and restorable.
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileDiskSource, type Repository } from '../../src/engine/repository/repository.ts';
import { until } from './cli-helpers.ts';
import { MiB, listObjects, makeImage, newRepository, openRepository, sha256File, tempDir, textBytes } from './helpers.ts';

describe('concurrent operations on one destination', () => {
  let dir: string;
  let a: string;
  let b: string;
  let c: string;

  beforeAll(async () => {
    dir = await tempDir();
    a = path.join(dir, 'a.raw');
    b = path.join(dir, 'b.raw');
    c = path.join(dir, 'c.raw');
    await makeImage(a, 32 * MiB, [
      { offset: 0, length: 16 * MiB, kind: 'random' },
      { offset: 16 * MiB, length: 16 * MiB, kind: 'text' },
    ]);
    // b shares its first half with a; c shares a's second half with both.
    await fs.copyFile(a, b);
    await fs.copyFile(a, c);
    const fb = await fs.open(b, 'r+');
    await fb.write(textBytes(16 * MiB), 0, 16 * MiB, 16 * MiB);
    await fb.close();
    const fc = await fs.open(c, 'r+');
    await fc.write(textBytes(16 * MiB), 0, 16 * MiB, 0);
    await fc.close();
    const repo = await newRepository(dir, { packSize: 4 * MiB });
    await repo.close();
  });
  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  async function backupOf(repo: Repository, file: string, tag: string) {
    const src = await FileDiskSource.open(file);
    try {
      return await repo.backup([{ name: 'vda', source: src }], { tag });
    } finally {
      await src.close();
    }
  }

  async function restoresTo(repo: Repository, id: string, file: string) {
    const out = path.join(dir, `${id}.restored`);
    await repo.restore(id, 0, { kind: 'file', path: out });
    expect(await sha256File(out)).toBe(await sha256File(file));
    await fs.rm(out);
  }

  it('two backups into one destination at once: both complete and restore byte-identical', async () => {
    const r1 = await openRepository(dir);
    const r2 = await openRepository(dir);
    const [x, y] = await Promise.all([backupOf(r1, a, 'vm'), backupOf(r2, b, 'vm')]);
    expect((await r1.list()).map((r) => r.id).sort()).toEqual([x.id, y.id].sort());
    await restoresTo(r1, x.id, a);
    await restoresTo(r2, y.id, b);
    expect((await r1.verify({ readData: true })).errors).toEqual([]);
    await Promise.all([r1.close(), r2.close()]);
  });

  it('a prune started during a backup waits for it and deletes none of its chunks', async () => {
    const backupRepo = await openRepository(dir);
    const pruneRepo = await openRepository(dir);
    const before = (await listObjects(dir, 'locks')).length;
    expect(before).toBe(0);
    // keep-last 1 of tag "vm" would forget everything but the newest backup of that tag — which
    // must then be the one running now (c shares chunks with the backups being forgotten).
    const running = backupOf(backupRepo, c, 'vm');
    await until(async () => (await listObjects(dir, 'locks')).length > 0);
    const prune = pruneRepo.prune({ keepLast: 1 });
    const done = await running;
    const pruned = await prune;
    expect(pruned.kept).toEqual([done.id]);
    expect(pruned.forgotten).toHaveLength(2);
    expect(pruned.deletedPacks + pruned.repackedPacks).toBeGreaterThan(0);
    await restoresTo(pruneRepo, done.id, c);
    expect((await pruneRepo.verify({ readData: true })).errors).toEqual([]);
    await Promise.all([backupRepo.close(), pruneRepo.close()]);
  });

  it('a backup started during a prune waits for it, then deduplicates only against what survived', async () => {
    const seed = await openRepository(dir);
    await backupOf(seed, a, 'other'); // something for the prune to remove
    await seed.close();
    const pruneRepo = await openRepository(dir);
    const backupRepo = await openRepository(dir); // its index was loaded before the prune
    const prune = pruneRepo.prune({ keepLast: 0 });
    await until(async () => (await listObjects(dir, 'locks')).length > 0, 60_000, 1);
    const running = backupOf(backupRepo, a, 'after');
    const pruned = await prune;
    expect(pruned.kept).toEqual([]);
    const done = await running;
    expect(done.newChunks).toBeGreaterThan(0); // it re-stored what the prune removed
    await restoresTo(backupRepo, done.id, a);
    expect((await backupRepo.verify({ readData: true })).errors).toEqual([]);
    await Promise.all([backupRepo.close(), pruneRepo.close()]);
  });
});
