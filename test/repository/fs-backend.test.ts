import fs from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openBackend } from '../../src/engine/destinations/index.ts';
import type { Backend } from '../../src/engine/destinations/backend.ts';
import { parseFilefrag } from '../../src/engine/repository/disk-source.ts';
import { FileDiskSource } from '../../src/engine/repository/repository.ts';
import { MiB, makeImage, tempDir } from './helpers.ts';

describe('file-system destination', () => {
  let dir: string;
  let be: Backend;
  beforeAll(async () => {
    dir = await tempDir();
    be = await openBackend(pathToFileURL(path.join(dir, 'dest')).href);
  });
  afterAll(async () => {
    await be.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('an object writer fills an object out of order, invisible until commit; abort leaves nothing', async () => {
    const w = await be.openWriter!('data/ef/efgh');
    await Promise.all([w.write(Buffer.from('world'), 6), w.write(Buffer.from('hello '), 0)]);
    expect(await be.stat('data/ef/efgh')).toBeNull();
    await w.commit();
    expect((await be.get('data/ef/efgh')).toString()).toBe('hello world');
    const into = Buffer.alloc(64, 1);
    const part = await be.getRange('data/ef/efgh', 6, 5, into);
    expect(part.toString()).toBe('world');
    expect(part.buffer).toBe(into.buffer);
    const dropped = await be.openWriter!('data/ef/gone');
    await dropped.write(Buffer.from('x'), 0);
    await dropped.abort();
    expect(await be.stat('data/ef/gone')).toBeNull();
    expect((await fs.readdir(path.join(dir, 'dest/data/ef'))).sort()).toEqual(['efgh']);
    await be.delete('data/ef/efgh');
  });

  it('puts, reads whole and ranged, stats, lists recursively by prefix, deletes', async () => {
    await be.put('data/ab/abcd', Buffer.from('0123456789'));
    await be.put('data/cd/cdef', Buffer.from('xyz'));
    await be.put('index/one', Buffer.from('i'));
    expect((await be.get('data/ab/abcd')).toString()).toBe('0123456789');
    expect((await be.getRange('data/ab/abcd', 3, 4)).toString()).toBe('3456');
    expect(await be.stat('data/cd/cdef')).toEqual({ key: 'data/cd/cdef', size: 3 });
    expect(await be.stat('data/none')).toBeNull();
    const keys: string[] = [];
    for await (const o of be.list('data/')) keys.push(o.key);
    expect(keys.sort()).toEqual(['data/ab/abcd', 'data/cd/cdef']);
    await be.delete('data/ab/abcd');
    await be.delete('data/ab/abcd'); // deleting a missing key is fine
    await expect(be.get('data/ab/abcd')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(be.getRange('nope', 0, 1)).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('replaces atomically and leaves no temporary file behind', async () => {
    await be.put('config', Buffer.alloc(MiB, 1));
    await be.put('config', Buffer.alloc(10, 2));
    expect(await be.get('config')).toEqual(Buffer.alloc(10, 2));
    expect((await fs.readdir(path.join(dir, 'dest'))).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
  });

  it('refuses keys that escape the root', async () => {
    await expect(be.put('../evil', Buffer.from('x'))).rejects.toMatchObject({ code: 'INVALID' });
    await expect(openBackend('ftp://x/y')).rejects.toMatchObject({ code: 'INVALID' });
  });
});

describe('file disk source', () => {
  it('finds the allocated extents of a sparse file (FIEMAP through filefrag)', async () => {
    const dir = await tempDir();
    const f = path.join(dir, 'sparse.raw');
    await makeImage(f, 64 * MiB, [
      { offset: 8 * MiB, length: MiB, kind: 'random' },
      { offset: 40 * MiB, length: 2 * MiB, kind: 'text' },
    ]);
    const src = await FileDiskSource.open(f);
    const ext = await src.allocatedExtents();
    await src.close();
    await fs.rm(dir, { recursive: true, force: true });
    expect(ext).not.toBeNull();
    const covered = ext!.reduce((s, e) => s + e.length, 0);
    expect(covered).toBeGreaterThanOrEqual(3 * MiB);
    expect(covered).toBeLessThan(8 * MiB);
    for (const must of [8 * MiB, 40 * MiB, 42 * MiB - 1]) expect(ext!.some((e) => e.offset <= must && must < e.offset + e.length)).toBe(true);
  });

  it('parses filefrag output and drops unwritten extents', () => {
    const out = `Filesystem type is: ef53
File size of x is 104857600 (104857600 blocks of 1 bytes)
 ext:     logical_offset:        physical_offset: length:   expected: flags:
   0: 10485760..13631487:   34816000..  37961727: 3145728:             
   1: 20000000..20999999:   40000000..  40999999: 1000000:  37961728: unwritten
   2: 52428800..53477375:          0..         0:      0:             last,unknown_loc,delalloc
x: 3 extents found`;
    expect(parseFilefrag(out, 104857600)).toEqual([
      { offset: 10485760, length: 3145728 },
      { offset: 52428800, length: 1048576 },
    ]);
    expect(parseFilefrag('garbage', 10)).toBeNull();
  });
});
