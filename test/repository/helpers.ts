// Test fixtures: small raw disk images of known shapes, temp folders, and a repository opener.
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FsBackend } from '../../src/engine/destinations/fs.ts';
import { Repository, type InitOptions } from '../../src/engine/repository/repository.ts';
import type { DiskSource, Extent, FileDiskSource } from '../../src/engine/repository/disk-source.ts';

export const MiB = 1 << 20;

export async function tempDir(prefix = 'sbx-repo-'): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), prefix));
}

export type Region = { offset: number; length: number; kind: 'random' | 'text' | 'zeros' };

/** Writes a sparse image of `size` bytes; bytes outside the regions are holes. */
export async function makeImage(file: string, size: number, regions: Region[]): Promise<void> {
  const fh = await fs.open(file, 'w');
  try {
    await fh.truncate(size);
    for (const r of regions) {
      const buf = r.kind === 'random' ? randomBytes(r.length) : r.kind === 'zeros' ? Buffer.alloc(r.length) : textBytes(r.length);
      await fh.write(buf, 0, buf.length, r.offset);
    }
  } finally {
    await fh.close();
  }
}

/** Compressible, log-like bytes, different on every call. */
export function textBytes(n: number): Buffer {
  const words = ['kernel:', 'INFO', 'GET /api/v1/items', '200', 'user=', 'session', 'cache hit', 'ms', '\n', 'WARN', 'db query'];
  const parts: string[] = [];
  let len = 0;
  const seed = randomBytes(n / 8 + 16);
  let k = 0;
  while (len < n) {
    const w = words[seed[k++ % seed.length] % words.length] + (seed[k++ % seed.length] % 7 === 0 ? String(seed[k % seed.length] * 131) : '') + ' ';
    parts.push(w);
    len += w.length;
  }
  return Buffer.from(parts.join('')).subarray(0, n);
}

/** A mixed image: holes, written zeros, text and random data, size not a multiple of 1 MiB. */
export async function makeMixedImage(file: string, size = 13 * MiB + 12345): Promise<void> {
  await makeImage(file, size, [
    { offset: 0, length: 2 * MiB + 100, kind: 'text' },
    { offset: 3 * MiB, length: MiB, kind: 'zeros' },
    { offset: 4 * MiB + 4096, length: 3 * MiB, kind: 'random' },
    { offset: 9 * MiB - 7, length: 2 * MiB, kind: 'text' },
    { offset: size - 5000, length: 5000, kind: 'random' },
  ]);
}

export async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

export const MASTER_KEY = Buffer.alloc(32, 7);
export const MASTER_KEY_HEX = MASTER_KEY.toString('hex');

export async function newRepository(dir: string, opts: Partial<InitOptions> = {}): Promise<Repository> {
  return Repository.init(new FsBackend(path.join(dir, 'repo')), { masterKey: MASTER_KEY, ...opts }, { lockWaitMs: 60_000 });
}

export async function openRepository(dir: string): Promise<Repository> {
  return Repository.open(new FsBackend(path.join(dir, 'repo')), MASTER_KEY, { lockWaitMs: 60_000 });
}

/** Wraps a real source and records which ranges were read (the incremental tests' evidence). */
export class CountingSource implements DiskSource {
  reads: Extent[] = [];
  constructor(private inner: DiskSource) {}
  get size() {
    return this.inner.size;
  }
  async read(offset: number, length: number) {
    this.reads.push({ offset, length });
    return this.inner.read(offset, length);
  }
  allocatedExtents() {
    return this.inner.allocatedExtents?.() ?? Promise.resolve(null);
  }
}

/** A real file source whose reads wait until `open()` — holds a backup mid-way, for as long as a test needs. */
export class GatedSource implements DiskSource {
  private gate!: () => void;
  private opened = new Promise<void>((r) => (this.gate = r));
  reading = false;
  constructor(private inner: FileDiskSource) {}
  get size() {
    return this.inner.size;
  }
  async read(offset: number, length: number, into?: Buffer) {
    this.reading = true;
    await this.opened;
    return this.inner.read(offset, length, into);
  }
  allocatedExtents() {
    return this.inner.allocatedExtents();
  }
  open() {
    this.gate();
  }
}

/** Every object file under the repository folder (relative keys). */
export async function listObjects(dir: string, sub = ''): Promise<string[]> {
  const root = path.join(dir, 'repo');
  const out: string[] = [];
  const walk = async (rel: string) => {
    for (const e of await fs.readdir(path.join(root, rel), { withFileTypes: true }).catch(() => [])) {
      const k = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(k);
      else if (!e.name.startsWith('.tmp-')) out.push(k); // a put in progress is not an object yet
    }
  };
  await walk(sub);
  return out.sort();
}

export async function flipByte(file: string, offset: number): Promise<void> {
  const fh = await fs.open(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, offset);
    b[0] ^= 0x55;
    await fh.write(b, 0, 1, offset);
  } finally {
    await fh.close();
  }
}
