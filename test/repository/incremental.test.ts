import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileDiskSource, type Repository } from '../../src/engine/repository/repository.ts';
import { CountingSource, MiB, makeImage, newRepository, sha256File, tempDir } from './helpers.ts';

describe('incremental backups from changed extents', () => {
  let dir: string;
  let repo: Repository;
  const size = 24 * MiB + 777;
  let day1: string;
  let day2: string;
  let first: string;

  beforeAll(async () => {
    dir = await tempDir();
    repo = await newRepository(dir, { chunkSize: MiB }); // the assertions count 1 MiB chunks
    day1 = path.join(dir, 'day1.raw');
    day2 = path.join(dir, 'day2.raw');
    await makeImage(day1, size, [
      { offset: 0, length: 10 * MiB, kind: 'random' },
      { offset: 12 * MiB, length: 8 * MiB, kind: 'text' },
      { offset: size - 777, length: 777, kind: 'random' },
    ]);
    const src = await FileDiskSource.open(day1);
    first = (await repo.backup([{ name: 'vda', source: src }], { tag: 'vm' })).id;
    await src.close();
  });
  afterAll(async () => {
    await repo.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('reads only the chunks the changed extents touch, and restores the new state exactly', async () => {
    await fs.copyFile(day1, day2);
    const fh = await fs.open(day2, 'r+');
    const changes = [
      { offset: 3 * MiB + 100, length: 5000 }, // inside chunk 3
      { offset: 7 * MiB - 10, length: 20 }, // straddles chunks 6 and 7
      { offset: 21 * MiB, length: MiB + 1 }, // formerly a hole: chunks 21 and 22
      { offset: size - 100, length: 100 }, // the short last chunk (24)
    ];
    for (const c of changes) await fh.write(randomBytes(c.length), 0, c.length, c.offset);
    await fh.close();

    const src = new CountingSource(await FileDiskSource.open(day2));
    const r = await repo.backup([{ name: 'vda', source: src, changedExtents: changes }], { tag: 'vm', parent: first });
    const chunksRead = [...new Set(src.reads.map((x) => x.offset / MiB))].sort((a, b) => a - b);
    expect(chunksRead).toEqual([3, 6, 7, 21, 22, 24]);
    expect(r.readBytes).toBe(5 * MiB + 777);
    expect(r.parentBytes).toBe(15 * MiB); // the 18 non-zero day1 chunks minus 3, 6 and 7
    expect(r.newChunks).toBe(6);

    const out = path.join(dir, 'day2.restored');
    await repo.restore(r.id, 0, { kind: 'file', path: out });
    expect(await sha256File(out)).toBe(await sha256File(day2));
    // The parent is still its own complete point in time.
    const out1 = path.join(dir, 'day1.restored');
    await repo.restore(first, 'vda', { kind: 'file', path: out1 });
    expect(await sha256File(out1)).toBe(await sha256File(day1));
  });

  it('without changed extents a child backup reads everything allocated but stores only new chunks', async () => {
    const src = new CountingSource(await FileDiskSource.open(day2));
    const r = await repo.backup([{ name: 'vda', source: src }], { tag: 'vm', parent: first });
    expect(r.newChunks).toBe(0);
    expect(r.dedupChunks).toBeGreaterThan(15);
  });

  it('an incremental survives pruning its parent (every backup is a full point in time)', async () => {
    const list = await repo.list();
    const newest = list[list.length - 1];
    const res = await repo.prune({ keepLast: 1 });
    expect(res.forgotten).toContain(first);
    expect(res.kept).toEqual([newest.id]);
    const out = path.join(dir, 'after-prune.restored');
    await repo.restore(newest.id, 0, { kind: 'file', path: out });
    expect(await sha256File(out)).toBe(await sha256File(day2));
    expect((await repo.verify({ readData: true })).errors).toEqual([]);
  });
});
