import { randomBytes } from 'node:crypto';
import { constants, write } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DirectWrites } from '../../src/engine/repository/direct-writes.ts';
import { tempDir } from './helpers.ts';

/** Page-aligned memory, as the worker threads' restore buffers are. */
function aligned(bytes: number): Buffer {
  const b = Buffer.from(new WebAssembly.Memory({ initial: Math.ceil(bytes / 65536) }).buffer, 0, bytes);
  randomBytes(bytes).copy(b);
  return b;
}

describe('restore writes through O_DIRECT', () => {
  let dir: string;
  let file: string;
  let fh: fs.FileHandle;
  let direct: fs.FileHandle;
  const writeAsync = promisify(write);
  /** fs.write, except that the O_DIRECT descriptor answers `code`, as a file system without O_DIRECT does. */
  const refusing = (code: string) => (fd: number, buf: Buffer, offset: number, length: number, position: number) =>
    fd === direct.fd ? Promise.reject(Object.assign(new Error(`${code}: refused`), { code })) : writeAsync(fd, buf, offset, length, position);

  beforeAll(async () => {
    dir = await tempDir();
    file = path.join(dir, 'target.raw');
    await fs.writeFile(file, '');
    fh = await fs.open(file, 'r+');
    direct = await fs.open(file, constants.O_WRONLY | constants.O_DIRECT);
  });
  afterAll(async () => {
    await direct.close();
    await fh.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('writes the aligned part direct and the tail buffered; the file holds exactly the bytes', async () => {
    const w = new DirectWrites();
    const a = aligned(3 * 4096 + 100);
    await w.writeOut(fh.fd, direct.fd, a, 0);
    expect(w.refused).toBe(false);
    expect(await fs.readFile(file)).toEqual(a);
  });

  it('a file system that refuses O_DIRECT (EINVAL) gets the same bytes buffered, now and from then on', async () => {
    const w = new DirectWrites(refusing('EINVAL'));
    const b = aligned(2 * 4096);
    await w.writeOut(fh.fd, direct.fd, b, 4 * 4096);
    expect(w.refused).toBe(true);
    const c = aligned(4096 + 1);
    await w.writeOut(fh.fd, direct.fd, c, 6 * 4096);
    const back = await fs.readFile(file);
    expect(back.subarray(4 * 4096, 6 * 4096)).toEqual(b);
    expect(back.subarray(6 * 4096)).toEqual(c);
  });

  it('any other write error (EIO) fails the write: no silent fallback over a failing device', async () => {
    const w = new DirectWrites(refusing('EIO'));
    await expect(w.writeOut(fh.fd, direct.fd, aligned(4096), 0)).rejects.toMatchObject({ code: 'EIO' });
    expect(w.refused).toBe(false);
  });
});
