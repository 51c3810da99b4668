// Restore does not recompute chunk ids unless asked (--verify): the authenticated decryption under
// the chunk id is its check (docs/repository-format.md, "What a restore checks"). These cases prove a blob
// that is not the chunk stored under its id still fails the restore, naming it, with and without
// --verify, and that --verify restores the same bytes.
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FsBackend } from '../../src/engine/destinations/fs.ts';
import { layout } from '../../src/engine/repository/format.ts';
import { readPackTrailer, type PackEntry } from '../../src/engine/repository/pack.ts';
import { FileDiskSource } from '../../src/engine/repository/repository.ts';
import { open, seal } from '../../src/engine/repository/keys.ts';
import { runCli } from './cli-helpers.ts';
import { MiB, makeImage, newRepository, openRepository, sha256File, tempDir } from './helpers.ts';

describe('restore trusts a chunk only when its blob opens under its id', () => {
  let dir: string;
  let root: string;
  let image: string;
  let backupId: string;
  let packId: string;
  let entries: PackEntry[];
  let dataKey: Buffer;

  beforeEach(async () => {
    dir = await tempDir();
    root = path.join(dir, 'repo');
    image = path.join(dir, 'disk.raw');
    // Random chunks are stored raw: every full one has a blob of the same length, so one can be
    // put in another's place without changing any offset.
    await makeImage(image, 2 * MiB + 777, [
      { offset: 0, length: MiB, kind: 'random' },
      { offset: MiB, length: MiB + 777, kind: 'text' },
    ]);
    const repo = await newRepository(dir);
    const src = await FileDiskSource.open(image);
    backupId = (await repo.backup([{ name: 'vda', source: src }])).id;
    await src.close();
    const [pack] = await fs.readdir(path.join(root, 'data'), { recursive: true }).then((l) => l.filter((n) => /^[0-9a-f]{2}\/[0-9a-f]{64}$/.test(n)));
    packId = pack.split('/')[1];
    const size = (await fs.stat(path.join(root, layout.pack(packId)))).size;
    entries = await readPackTrailer(new FsBackend(root), packId, size, repo.keys.dataKey);
    dataKey = Buffer.from(repo.keys.dataKey);
    await repo.close();
  });
  afterEach(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('restores byte-identical with and without --verify', async () => {
    for (const verify of [false, true]) {
      const out = path.join(dir, `out-${verify}.raw`);
      const r = await runCli(['restore', '--destination', `file://${root}`, '--backup', backupId, '--disk', '0', '--to', out, ...(verify ? ['--verify'] : [])]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(await sha256File(out)).toBe(await sha256File(image));
    }
  });

  it('a blob swapped for another chunk’s (both valid, same length) fails the restore naming the chunk, with and without --verify', async () => {
    const [a, b] = entries.filter((e) => e.flags === 0 && e.rawLength === 256 << 10);
    expect(a && b && a.length === b.length).toBe(true);
    const file = path.join(root, layout.pack(packId));
    const fh = await fs.open(file, 'r+');
    const blobB = Buffer.alloc(b.length);
    await fh.read(blobB, 0, b.length, b.offset);
    await fh.write(blobB, 0, blobB.length, a.offset); // chunk a's place now holds chunk b's blob
    await fh.close();
    for (const verify of [false, true]) {
      const repo = await openRepository(dir);
      const out = path.join(dir, 'out.raw');
      const failed = repo.restore(backupId, 0, { kind: 'file', path: out }, { verify });
      await expect(failed).rejects.toMatchObject({
        code: 'DAMAGED',
        object: layout.pack(packId),
        message: expect.stringContaining(`chunk ${a.id.toString('hex')} at pack offset ${a.offset}: cannot decrypt or decompress`),
      });
      await expect(fs.stat(out)).rejects.toThrow();
      await expect(fs.stat(`${out}.partial`)).rejects.toThrow();
      // The same to a stream (the workers open, the main thread writes).
      const sink = new (await import('node:stream')).PassThrough();
      sink.resume();
      await expect(repo.restore(backupId, 0, { kind: 'stream', stream: sink }, { verify })).rejects.toMatchObject({ code: 'DAMAGED', message: expect.stringContaining(a.id.toString('hex')) });
      await repo.close();
    }
    const r = await runCli(['restore', '--destination', `file://${root}`, '--backup', backupId, '--disk', '0', '--to', path.join(dir, 'cli.raw')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`chunk ${a.id.toString('hex')}`);
  });

  it('a blob sealed under its own id over other bytes (a fault on the backup host) restores as sealed without --verify, and fails DAMAGED with it', async () => {
    const a = entries.find((e) => e.flags === 0 && e.rawLength === 256 << 10)!;
    const file = path.join(root, layout.pack(packId));
    const fh = await fs.open(file, 'r+');
    const blob = Buffer.alloc(a.length);
    await fh.read(blob, 0, a.length, a.offset);
    const plain = open(dataKey, blob, a.id);
    plain[1000] ^= 0xff;
    const resealed = seal(dataKey, plain, a.id); // a valid seal under a's id, over bytes that are not a's
    expect(resealed.length).toBe(a.length);
    await fh.write(resealed, 0, resealed.length, a.offset);
    await fh.close();

    const repo = await openRepository(dir);
    const trusted = path.join(dir, 'trusted.raw');
    await repo.restore(backupId, 0, { kind: 'file', path: trusted });
    const [got, want] = [await fs.readFile(trusted), await fs.readFile(image)];
    const differ = [...got.keys()].filter((i) => got[i] !== want[i]);
    expect(differ).toHaveLength(1); // exactly the flipped byte: the seal alone cannot tell
    expect(got[differ[0]]).toBe(want[differ[0]] ^ 0xff);
    const verified = path.join(dir, 'verified.raw');
    await expect(repo.restore(backupId, 0, { kind: 'file', path: verified }, { verify: true })).rejects.toMatchObject({
      code: 'DAMAGED',
      message: expect.stringContaining(`chunk ${a.id.toString('hex')}`),
    });
    await expect(fs.stat(verified)).rejects.toThrow();
    await repo.close();
  });
});
