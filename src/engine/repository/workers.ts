// A small pool of worker threads (one per core) for the per-chunk CPU work. Callers bound how much
// they put in flight (see backup.ts / restore.ts); the pool itself only spreads requests.
import { createRequire } from 'node:module';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { RepositoryKeys } from './keys.ts';
import type { BlobToOpen, SealedChunk, WorkerRequest, WorkerResponse } from './worker-thread.ts';
import { reclaim, transferable } from './buffer-pool.ts';

type Pending = { resolve: (r: WorkerResponse & { ok: true }) => void; reject: (e: Error) => void };
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
export type OpenBlob = BlobToOpen;
export type { SealedChunk };
/** What a 'chunks' request says besides its buffer (worker-thread.ts). */
export type ChunkBatch = { at: number; lengths: number[]; read?: { fd: number; position: number }; ids?: Uint8Array; seal: 'all' | 'none' | number[] };
/** Where and how a worker writes a restored group: `fd` at `position`, aligned parts through
 *  `direct` (the same file opened O_DIRECT) when given; `trustSeal` skips recomputing ids. */
export type RestoreWrite = { fd: number; position: number; direct?: number; trustSeal: boolean };

export class ChunkError extends Error {
  constructor(message: string, readonly blobIndex?: number) {
    super(message);
  }
}

/** A worker could not read a local pack: `code` is the errno code, or SHORT (then `bytes` were read). */
export class PackReadError extends Error {
  constructor(message: string, readonly code: string, readonly bytes?: number) {
    super(message);
  }
}

export class WorkerPool {
  private workers: { w: Worker; busy: number }[] = [];
  private pending = new Map<number, Pending>();
  private seq = 0;
  private failed: Error | null = null;

  constructor(keys: RepositoryKeys, level: number, size = Math.max(1, os.availableParallelism())) {
    const boot = workerSource();
    for (let i = 0; i < size; i++) {
      const w = new Worker(boot, {
        eval: true,
        workerData: { dataKey: new Uint8Array(keys.dataKey), idKey: new Uint8Array(keys.idKey), level },
      });
      const slot = { w, busy: 0 };
      w.on('message', (r: WorkerResponse) => {
        slot.busy--;
        const p = this.pending.get(r.seq);
        if (!p) return;
        this.pending.delete(r.seq);
        if (this.pending.size === 0) for (const x of this.workers) x.w.unref();
        if (r.ok) p.resolve(r);
        else if (r.writeCode) p.reject(Object.assign(new Error(r.error), { code: r.writeCode }));
        else if (r.readCode) p.reject(new PackReadError(r.error, r.readCode, r.readBytes));
        else p.reject(new ChunkError(r.error, r.blobIndex));
      });
      w.on('error', (e) => this.fail(e));
      w.on('exit', (code) => {
        if (code !== 0) this.fail(new Error(`worker thread exited with code ${code}`));
      });
      w.unref();
      this.workers.push(slot);
    }
  }

  private fail(e: Error) {
    this.failed = e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  private send(msg: DistributiveOmit<WorkerRequest, 'seq'>, transfer: ArrayBuffer[], to?: (typeof this.workers)[number]): Promise<WorkerResponse & { ok: true }> {
    if (this.failed) return Promise.reject(this.failed);
    const seq = ++this.seq;
    const slot = to ?? this.workers.reduce((a, b) => (b.busy < a.busy ? b : a));
    slot.busy++;
    // Keep the process alive only while work is outstanding (an idle pool must not block exit).
    if (this.pending.size === 0) for (const x of this.workers) x.w.ref();
    return new Promise((resolve, reject) => {
      this.pending.set(seq, { resolve, reject });
      slot.w.postMessage({ ...msg, seq }, transfer);
    });
  }

  /** A batch of consecutive chunks (worker-thread.ts, op 'chunks'): zero-checked, hashed, and the
   *  chosen ones compressed and sealed over `buf`'s memory. `buf` must be transferable (a
   *  BufferPool's); it is moved to the worker and back: use the returned one. */
  async chunks(buf: Buffer, batch: ChunkBatch): Promise<{ buf: Buffer; ids: Buffer; zero: Uint8Array; sealed: SealedChunk[] }> {
    if (!transferable(buf)) throw new Error('a chunk batch needs a buffer of its own');
    const transfer = [buf.buffer as ArrayBuffer];
    // Ids as a standalone copy: cloning a view of Node's 8 KiB buffer pool copies the whole slab.
    const ids = batch.ids && new Uint8Array(batch.ids);
    const r = await this.send({ op: 'chunks', buf, ...batch, ids }, transfer);
    return { buf: reclaim(r.buf!), ids: Buffer.from(r.ids!.buffer, r.ids!.byteOffset, r.ids!.length), zero: r.zero!, sealed: r.sealed! };
  }

  /** Decrypts, decompresses and verifies blobs lying in `buf` into `out`, one after the other
   *  (`out` must hold the sum of their raw lengths). Both are moved to the worker and back: use
   *  the returned ones. */
  async open(buf: Buffer, blobs: OpenBlob[], out: Buffer, trustSeal = false): Promise<{ buf: Buffer; out: Buffer }> {
    const b = owned(buf, buf.length);
    const o = owned(out, out.length);
    const transfer = [b.buffer as ArrayBuffer];
    if (o.buffer !== b.buffer) transfer.push(o.buffer as ArrayBuffer);
    // Ids as standalone copies: cloning a view of Node's 8 KiB buffer pool copies the whole slab.
    const own = blobs.map((x) => ({ ...x, id: new Uint8Array(x.id) }));
    const r = await this.send({ op: 'open', buf: b, out: o, blobs: own, trustSeal }, transfer);
    return { buf: reclaim(r.buf!), out: reclaim(r.out!) };
  }

  /** Decrypts, decompresses and verifies blobs lying in `buf`, and writes them one after the
   *  other to file descriptor `fd` at `position`, all in the worker (the plain bytes never come
   *  back). `buf` is moved to the worker and back: use the returned one. */
  async restoreTo(buf: Buffer, blobs: OpenBlob[], to: RestoreWrite): Promise<Buffer> {
    const b = owned(buf, buf.length);
    const own = blobs.map((x) => ({ ...x, id: new Uint8Array(x.id) }));
    const r = await this.send({ op: 'restore', buf: b, blobs: own, ...to }, [b.buffer as ArrayBuffer]);
    return reclaim(r.buf!);
  }

  /** restoreTo, with the stored bytes read by the worker itself from a local pack file. */
  async restoreFromFile(file: { path: string; offset: number; length: number }, blobs: OpenBlob[], to: RestoreWrite): Promise<void> {
    const own = blobs.map((x) => ({ ...x, id: new Uint8Array(x.id) }));
    await this.send({ op: 'restore', file, blobs: own, ...to }, []);
  }

  /** Every worker closes the pack file restoreFromFile left open. */
  async release(): Promise<void> {
    await Promise.all(this.workers.map((w) => this.send({ op: 'release' }, [], w)));
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((s) => s.w.terminate()));
    this.workers = [];
  }
}

/** `buf` itself when its memory may move to a worker and has `room` bytes from its start; else
 *  a copy in memory of its own. */
function owned(buf: Buffer, room: number): Buffer {
  if (transferable(buf) && buf.buffer.byteLength - buf.byteOffset >= room) return buf;
  const c = Buffer.from(new ArrayBuffer(room), 0, buf.length);
  buf.copy(c);
  return c;
}

let cachedSource: string | null = null;

/**
 * The worker body (worker-thread.ts and its imports) as one plain-JS script. The threads then run
 * without a TypeScript loader: each starts in milliseconds and weighs ~20 MB less than one that
 * loads tsx. zstd-napi stays external, required by absolute path so any working directory works.
 */
function workerSource(): string {
  if (cachedSource) return cachedSource;
  const require = createRequire(import.meta.url);
  const zstd = require.resolve('zstd-napi/binding.js');
  const { buildSync } = require('esbuild') as typeof import('esbuild');
  const out = buildSync({
    entryPoints: [fileURLToPath(new URL('./worker-thread.ts', import.meta.url))],
    bundle: true,
    write: false,
    format: 'cjs',
    platform: 'node',
    target: 'node20',
    alias: { 'zstd-napi/binding.js': zstd },
    external: [zstd],
    logLevel: 'silent',
  });
  cachedSource = out.outputFiles[0].text;
  return cachedSource;
}
