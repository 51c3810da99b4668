// Repository.diskChunks: a backup's disk chunk by chunk for restores onto a disk that may already
// hold it — ids from the manifest, a keyed-id check of given bytes, and verified bytes fetched
// only when asked for (a damaged pack is named, never handed out).
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileDiskSource } from '../../src/engine/repository/repository.ts';
import { flipByte, listObjects, makeMixedImage, newRepository, openRepository, tempDir } from './helpers.ts';

let dir: string;
let disk: Buffer;
let backupId: string;

beforeAll(async () => {
  dir = await tempDir();
  await makeMixedImage(path.join(dir, 'disk.raw'), 3 * (1 << 20) + 12345);
  disk = await fs.readFile(path.join(dir, 'disk.raw'));
  const repo = await newRepository(dir);
  const src = await FileDiskSource.open(path.join(dir, 'disk.raw'));
  backupId = (await repo.backup([{ name: 'vda', source: src }])).id;
  await src.close();
  await repo.close();
});
afterAll(() => fs.rm(dir, { recursive: true, force: true }));

describe('Repository.diskChunks', () => {
  it('gives every chunk: zero ones as such, the others verified, and recognises their bytes by keyed id', async () => {
    const repo = await openRepository(dir);
    const chunks = await repo.diskChunks(backupId, 'vda');
    try {
      expect(chunks.size).toBe(disk.length);
      const parts: Buffer[] = [];
      let zeros = 0;
      for (let i = 0; i < chunks.count; i++) {
        const expected = disk.subarray(i * chunks.chunkSize, i * chunks.chunkSize + chunks.length(i));
        const got = await chunks.read(i);
        expect(got.equals(expected)).toBe(true);
        if (chunks.isZero(i)) zeros++;
        else {
          expect(chunks.matches(i, expected)).toBe(true);
          const other = Buffer.from(expected);
          other[0] ^= 1;
          expect(chunks.matches(i, other)).toBe(false);
        }
        parts.push(got);
      }
      expect(Buffer.concat(parts).equals(disk)).toBe(true);
      expect(zeros).toBeGreaterThan(0);
      expect(chunks.fetchedBytes).toBeGreaterThan(0);
    } finally {
      await chunks.close();
      await repo.close();
    }
  });

  it('a damaged pack fails the fetch of the damaged chunk with DAMAGED; no chunk comes back altered', async () => {
    const [pack] = await listObjects(dir, 'data');
    await flipByte(path.join(dir, 'repo', pack!), 40);
    const repo = await openRepository(dir);
    const chunks = await repo.diskChunks(backupId, 'vda');
    try {
      const failures: string[] = [];
      for (let i = 0; i < chunks.count; i++) {
        const expected = disk.subarray(i * chunks.chunkSize, i * chunks.chunkSize + chunks.length(i));
        try {
          expect((await chunks.read(i)).equals(expected)).toBe(true);
        } catch (e) {
          failures.push((e as { code?: string }).code ?? String(e));
        }
      }
      // One blob is damaged (more than one chunk of the disk may dedupe to it).
      expect(failures.length).toBeGreaterThan(0);
      expect(new Set(failures)).toEqual(new Set(['DAMAGED']));
    } finally {
      await chunks.close();
      await repo.close();
    }
  });
});
