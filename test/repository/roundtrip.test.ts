import fs from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileDiskSource, type Repository } from '../../src/engine/repository/repository.ts';
import { MiB, makeImage, makeMixedImage, newRepository, sha256File, tempDir } from './helpers.ts';

describe('backup → restore round trips are byte-identical', () => {
  let dir: string;
  let repo: Repository;
  beforeAll(async () => {
    dir = await tempDir();
    repo = await newRepository(dir);
  });
  afterAll(async () => {
    await repo.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  async function roundTrip(name: string, make: (file: string) => Promise<void>) {
    const file = path.join(dir, `${name}.raw`);
    await make(file);
    const source = await FileDiskSource.open(file);
    const result = await repo.backup([{ name, source }], { tag: name, metadata: { instance: name } });
    await source.close();
    const out = path.join(dir, `${name}.restored`);
    const r = await repo.restore(result.id, 0, { kind: 'file', path: out });
    expect(r.bytes).toBe((await fs.stat(file)).size);
    expect(await sha256File(out)).toBe(await sha256File(file));
    return { file, out, result };
  }

  it('sparse image (mostly holes): holes are not read and stay holes on restore', async () => {
    const { out, result } = await roundTrip('sparse', (f) =>
      makeImage(f, 64 * MiB, [
        { offset: 5 * MiB, length: 300_000, kind: 'random' },
        { offset: 40 * MiB + 17, length: MiB, kind: 'text' },
      ]),
    );
    expect(result.readBytes).toBeLessThanOrEqual(4 * MiB);
    const st = await fs.stat(out);
    expect(st.blocks * 512).toBeLessThan(8 * MiB);
  });

  it('all-zero image stores no chunk', async () => {
    const { result } = await roundTrip('zero', (f) => makeImage(f, 10 * MiB + 3, [{ offset: 0, length: 10 * MiB + 3, kind: 'zeros' }]));
    expect(result.newChunks).toBe(0);
    expect(result.zeroBytes).toBe(10 * MiB + 3);
  });

  it('random image (incompressible), size not a multiple of the chunk size', async () => {
    const { result } = await roundTrip('random', (f) => makeImage(f, 7 * MiB + 999, [{ offset: 0, length: 7 * MiB + 999, kind: 'random' }]));
    expect(result.newChunks).toBe(Math.ceil((7 * MiB + 999) / repo.config.chunkSize));
    expect(result.storedBytes).toBeGreaterThan(7 * MiB);
  });

  it('mixed image compresses its text part', async () => {
    const { result } = await roundTrip('mixed', (f) => makeMixedImage(f));
    expect(result.storedBytes).toBeLessThan(result.newBytes * 0.8);
  });

  it('tiny image smaller than one chunk', async () => {
    await roundTrip('tiny', (f) => makeImage(f, 4097, [{ offset: 0, length: 4097, kind: 'text' }]));
  });

  it('restores to a stream and to an existing device-like file, every byte in order', async () => {
    const file = path.join(dir, 'mixed.raw');
    const [b] = (await repo.list()).filter((x) => x.tag === 'mixed');
    const pass = new PassThrough();
    const h = createHash('sha256');
    pass.on('data', (c) => h.update(c));
    await repo.restore(b.id, 'mixed', { kind: 'stream', stream: pass });
    expect(h.digest('hex')).toBe(await sha256File(file));

    const dev = path.join(dir, 'device.img');
    await fs.writeFile(dev, Buffer.alloc((await fs.stat(file)).size, 0xff)); // garbage where zeros must land
    await repo.restore(b.id, 0, { kind: 'device', path: dev });
    expect(await sha256File(dev)).toBe(await sha256File(file));
  });

  it('lists complete backups with their metadata, oldest first', async () => {
    const list = await repo.list();
    expect(list.map((b) => b.tag)).toEqual(['sparse', 'zero', 'random', 'mixed', 'tiny']);
    expect(list[3].metadata).toEqual({ instance: 'mixed' });
    expect(list[3].disks[0]).toMatchObject({ name: 'mixed', size: 13 * MiB + 12345 });
  });

  it('a second backup of identical data stores almost nothing (dedup)', async () => {
    const file = path.join(dir, 'mixed.raw');
    const source = await FileDiskSource.open(file);
    const r = await repo.backup([{ name: 'again', source }]);
    await source.close();
    expect(r.newChunks).toBe(0);
    expect(r.storedBytes).toBeLessThan(4096); // manifest + record only
  });

  it('verify --read-data accepts the repository', async () => {
    const report = await repo.verify({ readData: true });
    expect(report.errors).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.checkedBytes).toBeGreaterThan(0);
  });
});
