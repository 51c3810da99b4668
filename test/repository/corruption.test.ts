import fs from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FsBackend } from '../../src/engine/destinations/fs.ts';
import { RepositoryError } from '../../src/engine/repository/errors.ts';
import { FileDiskSource, Repository } from '../../src/engine/repository/repository.ts';
import { MASTER_KEY, flipByte, listObjects, makeMixedImage, newRepository, openRepository, tempDir } from './helpers.ts';

// Each case damages one stored object of a fresh repository holding one backup, then expects
// verify (or open, for the key and config) to name exactly that object.
describe('damage to any stored object is named', () => {
  let dir: string;
  let root: string;
  let backupId: string;

  beforeEach(async () => {
    dir = await tempDir();
    root = path.join(dir, 'repo');
    await makeMixedImage(path.join(dir, 'disk.raw'));
    const repo = await newRepository(dir);
    const src = await FileDiskSource.open(path.join(dir, 'disk.raw'));
    backupId = (await repo.backup([{ name: 'vda', source: src }])).id;
    await src.close();
    await repo.close();
  });
  afterEach(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  async function verifyErrors(readData: boolean) {
    const repo = await openRepository(dir);
    try {
      return await repo.verify({ readData });
    } finally {
      await repo.close();
    }
  }

  it('a flipped byte inside a pack (chunk data) is found by --read-data', async () => {
    const [pack] = await listObjects(dir, 'data');
    await flipByte(path.join(root, pack), 5000);
    expect((await verifyErrors(false)).ok).toBe(true); // structure intact
    const report = await verifyErrors(true);
    expect(report.ok).toBe(false);
    expect(report.errors.map((e) => e.object)).toEqual([pack]);
    expect(report.errors[0].message).toMatch(/damaged: chunk [0-9a-f]{64}/);
  });

  it('a flipped byte in a pack trailer is found by --read-data', async () => {
    const [pack] = await listObjects(dir, 'data');
    const size = (await fs.stat(path.join(root, pack))).size;
    await flipByte(path.join(root, pack), size - 40);
    const report = await verifyErrors(true);
    expect(report.errors.map((e) => e.object)).toEqual([pack]);
  });

  it('a truncated pack is named without reading data', async () => {
    const [pack] = await listObjects(dir, 'data');
    const size = (await fs.stat(path.join(root, pack))).size;
    await fs.truncate(path.join(root, pack), size - 1000);
    const report = await verifyErrors(false);
    expect(report.errors).toEqual([{ object: pack, message: expect.stringMatching(/truncated/) }]);
  });

  it('a missing pack is named', async () => {
    const [pack] = await listObjects(dir, 'data');
    await fs.rm(path.join(root, pack));
    const report = await verifyErrors(false);
    expect(report.errors.map((e) => e.object)).toEqual([pack]);
    expect(report.errors[0].message).toMatch(/missing/);
  });

  it('a flipped byte in an index object is named (and the chunks it held are reported unindexed)', async () => {
    const [index] = await listObjects(dir, 'index');
    await flipByte(path.join(root, index), 30);
    const report = await verifyErrors(false);
    expect(report.errors[0]).toMatchObject({ object: index, message: expect.stringMatching(/damaged/) });
    expect(report.errors.some((e) => e.object === `backups/${backupId}` && /in no index/.test(e.message))).toBe(true);
  });

  it('a flipped byte in a manifest is named', async () => {
    const [manifest] = await listObjects(dir, 'manifests');
    await flipByte(path.join(root, manifest), 20);
    const report = await verifyErrors(false);
    expect(report.errors).toEqual([{ object: manifest, message: expect.stringMatching(/damaged/) }]);
  });

  it('a flipped byte in a backup record is named; list skips it', async () => {
    await flipByte(path.join(root, 'backups', backupId), 20);
    const report = await verifyErrors(false);
    expect(report.errors).toEqual([{ object: `backups/${backupId}`, message: expect.stringMatching(/damaged/) }]);
    const repo = await openRepository(dir);
    expect(await repo.list()).toEqual([]);
    await expect(repo.prune({ keepLast: 5 })).rejects.toMatchObject({ code: 'DAMAGED', object: `backups/${backupId}` });
    await repo.close();
  });

  it('a damaged key file is named at open, distinct from a wrong key', async () => {
    const [key] = await listObjects(dir, 'keys');
    const text = await fs.readFile(path.join(root, key), 'utf8');
    const file = JSON.parse(text);
    const wrapped = Buffer.from(file.wrapped, 'base64');
    wrapped[20] ^= 1;
    file.wrapped = wrapped.toString('base64');
    await fs.writeFile(path.join(root, key), JSON.stringify(file));
    const err = await Repository.open(new FsBackend(root), MASTER_KEY).catch((e) => e);
    expect(err).toBeInstanceOf(RepositoryError);
    expect(err).toMatchObject({ code: 'DAMAGED', object: key });
    await fs.writeFile(path.join(root, key), '{"version": 1, "wra');
    await expect(Repository.open(new FsBackend(root), MASTER_KEY)).rejects.toMatchObject({ code: 'DAMAGED', object: key });
  });

  it('an altered config is named at open', async () => {
    const config = JSON.parse(await fs.readFile(path.join(root, 'config'), 'utf8'));
    config.chunkSize = 4096;
    await fs.writeFile(path.join(root, 'config'), JSON.stringify(config));
    await expect(Repository.open(new FsBackend(root), MASTER_KEY)).rejects.toMatchObject({ code: 'DAMAGED', object: 'config' });
  });

  it('restore refuses a damaged chunk, naming the pack, and leaves no partial file', async () => {
    const [pack] = await listObjects(dir, 'data');
    await flipByte(path.join(root, pack), 5000);
    const repo = await openRepository(dir);
    const out = path.join(dir, 'out.raw');
    await expect(repo.restore(backupId, 0, { kind: 'file', path: out })).rejects.toMatchObject({ code: 'DAMAGED', object: pack });
    await expect(fs.stat(out)).rejects.toThrow();
    await expect(fs.stat(`${out}.partial`)).rejects.toThrow();
    await repo.close();
  });

  // The workers read packs of a file-system destination themselves: their failures are named too.
  it('restore from a truncated or missing pack names it and leaves no partial file', async () => {
    const [pack] = await listObjects(dir, 'data');
    const out = path.join(dir, 'out.raw');
    const size = (await fs.stat(path.join(root, pack))).size;
    await fs.truncate(path.join(root, pack), Math.floor(size / 2));
    let repo = await openRepository(dir);
    await expect(repo.restore(backupId, 0, { kind: 'file', path: out })).rejects.toMatchObject({ code: 'TRUNCATED', object: pack });
    await repo.close();
    await fs.rm(path.join(root, pack));
    repo = await openRepository(dir);
    await expect(repo.restore(backupId, 0, { kind: 'file', path: out })).rejects.toMatchObject({ code: 'MISSING_OBJECT', object: pack });
    await repo.close();
    await expect(fs.stat(out)).rejects.toThrow();
    await expect(fs.stat(`${out}.partial`)).rejects.toThrow();
  });
});
