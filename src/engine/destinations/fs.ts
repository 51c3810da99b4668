// File-system destination: one file per object under the root folder. `put` writes a temporary
// file in the same folder, fsyncs it and renames it into place (then fsyncs the folder), so a
// reader or a crash sees the whole object or none of it.
import { constants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import type { Backend, ObjectInfo, ObjectWriter } from './backend.ts';
import { BackendError } from './backend.ts';

const TEMP_PREFIX = '.tmp-';

export async function openFsBackend(url: URL, _env: NodeJS.ProcessEnv = process.env): Promise<Backend> {
  return new FsBackend(fileURLToPath(url));
}

export class FsBackend implements Backend {
  readonly location: string;
  private madeDirs = new Set<string>();

  constructor(readonly root: string) {
    this.location = `file://${root}`;
  }

  private file(key: string): string {
    if (!key || key.startsWith('/') || key.split('/').some((p) => p === '..' || p === '' || p === '.')) {
      throw new BackendError('INVALID', `${this.location}: invalid object key ${JSON.stringify(key)}`);
    }
    return path.join(this.root, key);
  }

  private wrap(key: string, e: unknown): never {
    const err = e as NodeJS.ErrnoException;
    if (err?.code === 'ENOENT') throw BackendError.notFound(this.location, key);
    if (err?.code === 'EACCES' || err?.code === 'EPERM') throw new BackendError('DENIED', `${this.location}: ${key}: ${err.message}`, { cause: e });
    throw new BackendError('UNAVAILABLE', `${this.location}: ${key}: ${err?.message ?? String(e)}`, { cause: e });
  }

  localFile(key: string): string {
    return this.file(key);
  }

  async get(key: string): Promise<Buffer> {
    try {
      return await fs.readFile(this.file(key));
    } catch (e) {
      this.wrap(key, e);
    }
  }

  async getRange(key: string, offset: number, length: number, into?: Buffer): Promise<Buffer> {
    let fh: fs.FileHandle | undefined;
    try {
      fh = await fs.open(this.file(key), constants.O_RDONLY);
      const buf = into && into.length >= length ? into.subarray(0, length) : Buffer.allocUnsafeSlow(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await fh.read(buf, done, length - done, offset + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return done === length ? buf : buf.subarray(0, done);
    } catch (e) {
      return this.wrap(key, e);
    } finally {
      await fh?.close();
    }
  }

  async put(key: string, data: Uint8Array): Promise<void> {
    const file = this.file(key);
    const dir = path.dirname(file);
    const tmp = path.join(dir, `${TEMP_PREFIX}${randomBytes(8).toString('hex')}`);
    try {
      if (!this.madeDirs.has(dir)) {
        await fs.mkdir(dir, { recursive: true });
        this.madeDirs.add(dir);
      }
      const fh = await fs.open(tmp, 'wx');
      try {
        let done = 0;
        while (done < data.length) done += (await fh.write(data, done, data.length - done)).bytesWritten;
        await fh.sync();
      } finally {
        await fh.close();
      }
      await fs.rename(tmp, file);
      await syncDir(dir);
    } catch (e) {
      await fs.rm(tmp, { force: true }).catch(() => {});
      this.wrap(key, e);
    }
  }

  /** Writes into a temporary file of the same folder; commit fsyncs and renames it like put. */
  async openWriter(key: string): Promise<ObjectWriter> {
    const file = this.file(key);
    const dir = path.dirname(file);
    const tmp = path.join(dir, `${TEMP_PREFIX}${randomBytes(8).toString('hex')}`);
    let fh: fs.FileHandle;
    try {
      if (!this.madeDirs.has(dir)) {
        await fs.mkdir(dir, { recursive: true });
        this.madeDirs.add(dir);
      }
      fh = await fs.open(tmp, 'wx');
    } catch (e) {
      this.wrap(key, e);
    }
    const drop = async () => {
      await fh.close().catch(() => {});
      await fs.rm(tmp, { force: true }).catch(() => {});
    };
    return {
      write: async (data, offset) => {
        try {
          let done = 0;
          while (done < data.length) done += (await fh.write(data, done, data.length - done, offset + done)).bytesWritten;
        } catch (e) {
          this.wrap(key, e);
        }
      },
      commit: async () => {
        try {
          await fh.sync();
          await fh.close();
          await fs.rename(tmp, file);
          await syncDir(dir);
        } catch (e) {
          await drop();
          this.wrap(key, e);
        }
      },
      abort: drop,
    };
  }

  async stat(key: string): Promise<ObjectInfo | null> {
    try {
      const st = await fs.stat(this.file(key));
      return st.isFile() ? { key, size: st.size } : null;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      this.wrap(key, e);
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    // Walk only the folder the prefix names, then filter by the full prefix.
    const slash = prefix.lastIndexOf('/');
    const base = slash >= 0 ? prefix.slice(0, slash) : '';
    yield* this.walk(base, prefix);
  }

  private async *walk(rel: string, prefix: string): AsyncIterable<ObjectInfo> {
    let entries: import('node:fs').Dirent[];
    try {
      entries = await fs.readdir(rel ? path.join(this.root, rel) : this.root, { withFileTypes: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      this.wrap(rel || '.', e);
    }
    for (const ent of entries) {
      const key = rel ? `${rel}/${ent.name}` : ent.name;
      if (ent.isDirectory()) {
        if (key.startsWith(prefix) || prefix.startsWith(`${key}/`)) yield* this.walk(key, prefix);
      } else if (ent.isFile() && !ent.name.startsWith(TEMP_PREFIX) && key.startsWith(prefix)) {
        const st = await fs.stat(path.join(this.root, key)).catch(() => null);
        if (st) yield { key, size: st.size };
      }
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await fs.rm(this.file(key), { force: true });
    } catch (e) {
      this.wrap(key, e);
    }
  }

  /** Temporary files left by a crash mid-put (never visible as objects); prune removes them. */
  async cleanTemporaries(olderThanMs: number): Promise<number> {
    let n = 0;
    const visit = async (dir: string): Promise<void> => {
      const entries = await fs.readdir(dir, { withFileTypes: true }).catch(() => []);
      for (const ent of entries) {
        const p = path.join(dir, ent.name);
        if (ent.isDirectory()) await visit(p);
        else if (ent.name.startsWith(TEMP_PREFIX)) {
          const st = await fs.stat(p).catch(() => null);
          if (st && Date.now() - st.mtimeMs > olderThanMs) {
            await fs.rm(p, { force: true });
            n++;
          }
        }
      }
    };
    await visit(this.root);
    return n;
  }

  async close(): Promise<void> {}
}

async function syncDir(dir: string): Promise<void> {
  const fh = await fs.open(dir, constants.O_RDONLY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
