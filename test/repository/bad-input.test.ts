import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsBackend } from '../../src/engine/destinations/fs.ts';
import { parseMasterKey } from '../../src/engine/repository/keys.ts';
import { FileDiskSource, Repository } from '../../src/engine/repository/repository.ts';
import { runCli } from './cli-helpers.ts';
import { MASTER_KEY, MASTER_KEY_HEX, listObjects, makeMixedImage, newRepository, openRepository, sha256File, tempDir } from './helpers.ts';

describe('bad input gets a clear typed error and changes nothing', () => {
  let dir: string;
  let root: string;
  let disk: string;
  let backupId: string;
  let snapshot: Record<string, string>;

  async function contents(): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    for (const k of await listObjects(dir)) out[k] = await sha256File(path.join(root, k));
    return out;
  }

  beforeAll(async () => {
    dir = await tempDir();
    root = path.join(dir, 'repo');
    disk = path.join(dir, 'disk.raw');
    await makeMixedImage(disk);
    const repo = await newRepository(dir);
    const src = await FileDiskSource.open(disk);
    backupId = (await repo.backup([{ name: 'vda', source: src }])).id;
    await src.close();
    await repo.close();
    snapshot = await contents();
  });
  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('a wrong master key: WRONG_KEY, and the CLI says so without printing any key', async () => {
    const other = Buffer.alloc(32, 9);
    await expect(Repository.open(new FsBackend(root), other)).rejects.toMatchObject({ code: 'WRONG_KEY' });
    const r = await runCli(['list', '--destination', `file://${root}`], { STRONGBOX_MASTER_KEY: other.toString('base64') });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/master key does not open this repository/);
    expect(r.stderr + r.stdout).not.toContain(other.toString('base64'));
    expect(r.stderr + r.stdout).not.toContain(MASTER_KEY_HEX);
    expect(await contents()).toEqual(snapshot);
  });

  it('a malformed master key: BAD_MASTER_KEY', async () => {
    expect(() => parseMasterKey('abc')).toThrow(/32 bytes/);
    expect(() => parseMasterKey(undefined)).toThrow(/not set/);
    expect(parseMasterKey(MASTER_KEY.toString('base64'))).toEqual(MASTER_KEY);
    const r = await runCli(['list', '--destination', `file://${root}`], { STRONGBOX_MASTER_KEY: 'too-short' });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/STRONGBOX_MASTER_KEY is not usable/);
  });

  it('init over an existing repository or a non-empty folder: ALREADY_EXISTS, nothing overwritten', async () => {
    await expect(Repository.init(new FsBackend(root), { masterKey: MASTER_KEY })).rejects.toMatchObject({ code: 'ALREADY_EXISTS' });
    const r = await runCli(['init', '--destination', `file://${root}`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/already holds a repository/);
    expect(await contents()).toEqual(snapshot);

    const other = path.join(dir, 'other');
    await fs.mkdir(other);
    await fs.writeFile(path.join(other, 'precious.txt'), 'keep me');
    await expect(Repository.init(new FsBackend(other), { masterKey: MASTER_KEY })).rejects.toMatchObject({ code: 'ALREADY_EXISTS' });
    expect(await fs.readdir(other)).toEqual(['precious.txt']);
  });

  it('a folder that is no repository, or a foreign one: NOT_A_REPOSITORY / UNSUPPORTED_VERSION', async () => {
    const empty = path.join(dir, 'empty');
    await fs.mkdir(empty);
    await expect(Repository.open(new FsBackend(empty), MASTER_KEY)).rejects.toMatchObject({ code: 'NOT_A_REPOSITORY' });
    const foreign = path.join(dir, 'foreign');
    await fs.mkdir(foreign);
    await fs.writeFile(path.join(foreign, 'config'), Buffer.from([0x00, 0x01, 0xff]));
    await expect(Repository.open(new FsBackend(foreign), MASTER_KEY)).rejects.toThrow(/not a Strongbox repository config/);
    await fs.writeFile(path.join(foreign, 'config'), JSON.stringify({ version: 2, id: 'x', chunker_polynomial: '3f' }));
    await expect(Repository.open(new FsBackend(foreign), MASTER_KEY)).rejects.toMatchObject({ code: 'NOT_A_REPOSITORY' });
    await fs.writeFile(path.join(foreign, 'config'), JSON.stringify({ format: 'strongbox-repository', version: 99 }));
    await expect(Repository.open(new FsBackend(foreign), MASTER_KEY)).rejects.toMatchObject({ code: 'UNSUPPORTED_VERSION' });
    const r = await runCli(['verify', '--destination', `file://${empty}`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/is not a Strongbox repository/);
  });

  it('a missing disk path: SOURCE_NOT_FOUND, no backup written', async () => {
    await expect(FileDiskSource.open(path.join(dir, 'nope.raw'))).rejects.toMatchObject({ code: 'SOURCE_NOT_FOUND' });
    const r = await runCli(['backup', '--destination', `file://${root}`, '--disk', disk, '--disk', path.join(dir, 'nope.raw')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/nope\.raw cannot be read/);
    expect(await contents()).toEqual(snapshot);
  });

  it('restore onto an existing file: TARGET_EXISTS, the file untouched', async () => {
    const repo = await openRepository(dir);
    const target = path.join(dir, 'existing.raw');
    await fs.writeFile(target, 'do not overwrite');
    await expect(repo.restore(backupId, 0, { kind: 'file', path: target })).rejects.toMatchObject({ code: 'TARGET_EXISTS' });
    expect(await fs.readFile(target, 'utf8')).toBe('do not overwrite');
    await expect(repo.restore('20200101T000000Z-00000000', 0, { kind: 'file', path: path.join(dir, 'x') })).rejects.toMatchObject({ code: 'BACKUP_NOT_FOUND' });
    await expect(repo.restore(backupId, 3, { kind: 'file', path: path.join(dir, 'x') })).rejects.toMatchObject({ code: 'DISK_NOT_FOUND' });
    await repo.close();
    const r = await runCli(['restore', '--destination', `file://${root}`, '--backup', backupId, '--disk', '0', '--to', target]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/already exists/);
    expect(await fs.readFile(target, 'utf8')).toBe('do not overwrite');
  });

  it('usage errors exit with 2 and say what is missing', async () => {
    const r = await runCli(['backup', '--destination', `file://${root}`]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--disk PATH is required/);
    const u = await runCli(['prune', '--destination', `file://${root}`, '--keep-last', 'x']);
    expect(u.code).toBe(2);
  });

  it('an aborted backup leaves no visible backup', async () => {
    const repo = await openRepository(dir);
    const ac = new AbortController();
    const src = await FileDiskSource.open(disk);
    const p = repo.backup([{ name: 'vda', source: src }], { signal: ac.signal, onProgress: () => ac.abort() });
    await expect(p).rejects.toMatchObject({ code: 'ABORTED' });
    await src.close();
    expect((await repo.list()).map((b) => b.id)).toEqual([backupId]);
    expect(await fs.readdir(path.join(root, 'locks'))).toEqual([]);
    await repo.close();
  });

  it('a disk that ends before its size: the error names the disk and the offset, no backup written', async () => {
    const repo = await openRepository(dir);
    const file = path.join(dir, 'shrinking.raw');
    await fs.copyFile(disk, file);
    const src = await FileDiskSource.open(file);
    await fs.truncate(file, 5 * 1024 * 1024); // after open: the source still says 13 MiB
    // Read every chunk (as a block device would be), so the worker threads meet the end.
    const whole = { size: src.size, fd: src.fd, read: src.read.bind(src), allocatedExtents: async () => null };
    const e = await repo.backup([{ name: 'vdb', source: whole }]).catch((x: Error) => x);
    // Batches are read in parallel: the first to fail is at the end or past it.
    expect(String((e as Error).message)).toMatch(/^vdb: unexpected end of disk at \d+$/);
    expect(Number(/\d+$/.exec((e as Error).message)![0])).toBeGreaterThanOrEqual(5 * 1024 * 1024);
    await src.close();
    expect((await repo.list()).map((b) => b.id)).toEqual([backupId]);
    expect(await fs.readdir(path.join(root, 'locks'))).toEqual([]);
    await repo.close();
  });

  it('the CLI backup prints one JSON line with the figures and restores byte-identical', async () => {
    const r = await runCli(['backup', '--destination', `file://${root}`, '--disk', disk, '--tag', 'cli']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const j = JSON.parse(lines[0]);
    expect(j).toMatchObject({ id: expect.any(String), readBytes: expect.any(Number), storedBytes: expect.any(Number), seconds: expect.any(Number) });
    const out = path.join(dir, 'cli.restored');
    const rr = await runCli(['restore', '--destination', `file://${root}`, '--backup', j.id, '--disk', '0', '--to', out]);
    expect(rr.code).toBe(0);
    expect(await sha256File(out)).toBe(await sha256File(disk));
    const l = await runCli(['list', '--destination', `file://${root}`]);
    expect(l.stdout).toContain(j.id);
  });
});
