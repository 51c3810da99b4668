// Body of a worker thread: the CPU-heavy per-chunk work (HMAC-SHA256 id, zstd, AES-256-GCM, and
// the reverse with verification) runs here so every core is busy while the main thread reads and
// writes. Buffers move in and out by transfer, never by copy, and come back to the main thread
// to be reused: a backup batch's blobs are sealed over its own plain chunks (which this thread
// reads itself from a local disk), a restored group is decompressed into a buffer the main
// thread lends. The only per-chunk allocation left is the cipher's output (young garbage of
// this thread, collected by releasedBytes' minor GCs).
import { closeSync, openSync, readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { chunkId, open, sealInto } from './keys.ts';
import { ID_BYTES, SEAL_OVERHEAD } from './format.ts';
import { ChunkCompressor, ChunkDecompressor } from './compress.ts';
import { releasedBytes } from './memory.ts';
import { DirectWrites } from './direct-writes.ts';

export type BlobToOpen = { offset: number; length: number; flags: number; rawLength: number; id: Uint8Array };

export type WorkerRequest =
  /** Closes the pack file a restore left open. */
  | { op: 'release'; seq: number }
  /** A batch of consecutive chunks of a disk (backup.ts): chunk k is `lengths[k]` bytes of `buf`,
   *  the first at byte `at` (read here from file descriptor `read.fd` at `read.position` when
   *  given). Each is zero-checked and hashed (unless `ids` already holds their ids), and those
   *  `seal` names (all non-zero ones, or these indices) are compressed and sealed, the blobs
   *  written one after the other from the start of `buf`. `at` ≥ SEAL_OVERHEAD × chunks, so a
   *  blob never reaches a chunk not yet sealed. */
  | { op: 'chunks'; seq: number; buf: Uint8Array; at: number; lengths: number[]; read?: { fd: number; position: number }; ids?: Uint8Array; seal: 'all' | 'none' | number[] }
  /** Blobs lying in `buf`, decrypted, decompressed and verified into `out`, one after the other.
   *  `trustSeal`: the blob opening under its id (the AAD) is the check; the id is not recomputed
   *  (restore without --verify, docs/repository-format.md "What a restore checks"). */
  | { op: 'open'; seq: number; buf: Uint8Array; out: Uint8Array; blobs: BlobToOpen[]; trustSeal?: boolean }
  /** Like open, into this thread's own buffer, then written to file descriptor `fd` at `position`
   *  (through `direct`, the same file opened O_DIRECT, where aligned). The stored bytes come in
   *  `buf`, or are read here from `file` (`length` bytes at `offset`). */
  | { op: 'restore'; seq: number; buf?: Uint8Array; file?: { path: string; offset: number; length: number }; blobs: BlobToOpen[]; fd: number; position: number; direct?: number; trustSeal?: boolean };

/** A sealed chunk of a 'chunks' batch: its index in the batch and its blob in `buf`. */
export type SealedChunk = { chunk: number; offset: number; length: number; flags: number };

export type WorkerResponse =
  | { seq: number; ok: true; buf?: Uint8Array; out?: Uint8Array; ids?: Uint8Array; zero?: Uint8Array; sealed?: SealedChunk[] }
  | { seq: number; ok: false; error: string; blobIndex?: number; writeCode?: string; readCode?: string; readBytes?: number };

const { dataKey, idKey, level } = workerData as { dataKey: Uint8Array; idKey: Uint8Array; level: number };
const dk = Buffer.from(dataKey);
const ik = Buffer.from(idKey);
const compressor = new ChunkCompressor(level);
const decompressor = new ChunkDecompressor();

const view = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.length);
// Restored groups land in this thread's own buffers and go straight to the target: the plain bytes
// never cross threads. Page-aligned (WebAssembly memories), so they can be written with O_DIRECT
// (direct-writes.ts). Two of them: while one is written (a direct write waits for the device) the
// next group is opened into the other.
const RESTORE_BUFFERS = 2;
/** restore.ts's MAX_RAW (not imported: this thread's bundle stays small). */
const RESTORE_BUFFER_BYTES = 2 << 20;
const freeRestoreBufs: Buffer[] = [];
let restoreBufs = 0;
const bufWaiters: (() => void)[] = [];
const targetWrites = new DirectWrites();

async function takeRestoreBuf(bytes: number): Promise<Buffer> {
  while (freeRestoreBufs.length === 0 && restoreBufs >= RESTORE_BUFFERS) await new Promise<void>((r) => bufWaiters.push(r));
  let b = freeRestoreBufs.pop();
  if (!b) restoreBufs++;
  // Sized for restore's largest group at once: a WebAssembly memory outgrown is freed only by a
  // major GC, so growing one group at a time kept every outgrown size resident (+20 MB measured).
  if (!b || b.length < bytes) b = alignedBuffer(Math.max(bytes, RESTORE_BUFFER_BYTES));
  return b;
}

function giveRestoreBuf(b: Buffer): void {
  freeRestoreBufs.push(b);
  bufWaiters.shift()?.();
}

function alignedBuffer(bytes: number): Buffer {
  const pages = Math.ceil(bytes / 65536);
  return Buffer.from(new WebAssembly.Memory({ initial: pages, maximum: pages }).buffer, 0, pages * 65536);
}

// Groups read here (local packs): this thread's own buffer, and the pack file last opened.
let readBuf = Buffer.alloc(0);
let openPack: { path: string; fd: number } | null = null;

/** `length` bytes at `offset` of a local pack file, into readBuf (consecutive groups mostly lie in
 *  one pack: its descriptor is kept open until another pack is read). */
function readPack(path: string, offset: number, length: number): Buffer | { readCode: string; readBytes?: number; error: string } {
  try {
    if (openPack?.path !== path) {
      if (openPack) closeSync(openPack.fd);
      openPack = null;
      openPack = { path, fd: openSync(path, 'r') };
    }
    if (readBuf.length < length) readBuf = Buffer.allocUnsafeSlow(length);
    let done = 0;
    for (let n = 1; done < length && n > 0; done += n) n = readSync(openPack.fd, readBuf, done, length - done, offset + done);
    if (done < length) return { readCode: 'SHORT', readBytes: done, error: 'short read' };
    return readBuf.subarray(0, length);
  } catch (e) {
    const { message, code } = e as NodeJS.ErrnoException;
    return { readCode: code ?? 'EIO', error: message };
  }
}

/** Opens and verifies blobs lying in `buf` into `out`, one after the other; the bytes written,
 *  or a failure message naming the blob. */
function openBlobs(buf: Buffer, blobs: BlobToOpen[], out: Buffer, trustSeal = false): number | { error: string; blobIndex: number } {
  let at = 0;
  for (let i = 0; i < blobs.length; i++) {
    const b = blobs[i];
    const id = Buffer.from(b.id.buffer, b.id.byteOffset, b.id.length);
    const into = out.subarray(at, at + b.rawLength);
    let n: number;
    try {
      n = decompressor.decompressInto(open(dk, buf.subarray(b.offset, b.offset + b.length), id), b.flags, into);
    } catch (e) {
      return { error: `cannot decrypt or decompress: ${(e as Error).message}`, blobIndex: i };
    }
    if (n !== b.rawLength) return { error: `content has ${n} bytes, its index entry says ${b.rawLength}`, blobIndex: i };
    if (!trustSeal && !chunkId(ik, into).equals(id)) return { error: 'content does not match its id', blobIndex: i };
    at += b.rawLength;
  }
  return at;
}

let zeros = new Uint8Array(0);

/** The 'chunks' request (see WorkerRequest). */
function chunks(buf: Buffer, msg: WorkerRequest & { op: 'chunks' }) {
  const { at, lengths, seal } = msg;
  const span = lengths.reduce((s, n) => s + n, 0);
  if (at < SEAL_OVERHEAD * lengths.length || at + span > buf.length) return { error: 'no room for the batch' };
  if (msg.read) {
    let done = 0;
    for (let n = 1; done < span && n > 0; done += n) n = readSync(msg.read.fd, buf, at + done, span - done, msg.read.position + done);
    if (done < span) return { error: `unexpected end of disk at ${msg.read.position + done}` };
  }
  const ids = msg.ids ? Buffer.from(msg.ids.buffer, msg.ids.byteOffset, msg.ids.length) : Buffer.alloc(ID_BYTES * lengths.length);
  const zero = new Uint8Array(lengths.length);
  const sealed: SealedChunk[] = [];
  const which = Array.isArray(seal) ? new Set(seal) : null;
  let garbage = 0;
  let cursor = 0; // where the next blob goes: never past the start of the chunk it seals
  for (let k = 0, off = at; k < lengths.length; off += lengths[k++]) {
    const plain = buf.subarray(off, off + lengths[k]);
    const id = ids.subarray(k * ID_BYTES, (k + 1) * ID_BYTES);
    if (!msg.ids) {
      if (zeros.length < plain.length) zeros = new Uint8Array(plain.length);
      if (plain.equals(zeros.subarray(0, plain.length))) {
        zero[k] = 1;
        continue;
      }
      chunkId(ik, plain).copy(id);
    }
    if (seal === 'none' || (which && !which.has(k))) continue;
    const { data, flags } = compressor.compress(plain);
    // cursor ≤ off − SEAL_OVERHEAD (the `at` rule), so the blob fits before the next chunk. When
    // stored raw, `data` is `plain` itself: sealInto reads it whole before it writes.
    const n = sealInto(dk, data, id, buf.subarray(cursor, off + lengths[k]));
    sealed.push({ chunk: k, offset: cursor, length: n, flags });
    cursor += n;
    garbage += n;
  }
  return { ids: new Uint8Array(ids.buffer, ids.byteOffset, ids.length), zero, sealed, garbage };
}

// One request at a time, in order; a restore's write may still run while the next is handled.
let queue = Promise.resolve();
parentPort!.on('message', (msg: WorkerRequest) => {
  queue = queue.then(() => handle(msg));
});

async function handle(msg: WorkerRequest): Promise<void> {
  try {
    if (msg.op === 'release') {
      if (openPack) closeSync(openPack.fd);
      openPack = null;
      parentPort!.postMessage({ seq: msg.seq, ok: true });
    } else if (msg.op === 'chunks') {
      const buf = view(msg.buf);
      const r = chunks(buf, msg);
      if ('error' in r) return void parentPort!.postMessage({ seq: msg.seq, ok: false, error: r.error });
      parentPort!.postMessage({ seq: msg.seq, ok: true, buf, ...r }, [buf.buffer as ArrayBuffer]);
      releasedBytes(r.garbage); // the cipher's output (a number: the transfer emptied the views)
    } else if (msg.op === 'open') {
      const buf = view(msg.buf);
      const out = view(msg.out);
      const at = openBlobs(buf, msg.blobs, out, msg.trustSeal);
      if (typeof at !== 'number') return void parentPort!.postMessage({ seq: msg.seq, ok: false, ...at });
      const transfer = [buf.buffer as ArrayBuffer];
      if (out.buffer !== buf.buffer) transfer.push(out.buffer as ArrayBuffer);
      const garbage = buf.length; // the cipher's output; read before the transfer empties `buf`
      parentPort!.postMessage({ seq: msg.seq, ok: true, buf, out: out.subarray(0, at) }, transfer);
      releasedBytes(garbage);
    } else {
      const buf = msg.buf ? view(msg.buf) : readPack(msg.file!.path, msg.file!.offset, msg.file!.length);
      if (!Buffer.isBuffer(buf)) return void parentPort!.postMessage({ seq: msg.seq, ok: false, ...buf });
      const raw = msg.blobs.reduce((s, b) => s + b.rawLength, 0);
      const out = await takeRestoreBuf(raw);
      const at = openBlobs(buf, msg.blobs, out, msg.trustSeal);
      if (typeof at !== 'number') {
        giveRestoreBuf(out);
        return void parentPort!.postMessage({ seq: msg.seq, ok: false, ...at });
      }
      const garbage = buf.length; // the cipher's output; read before the transfer empties `buf`
      // Answered once written; meanwhile the next request is handled (its group read, opened).
      void targetWrites.writeOut(msg.fd, msg.direct, out.subarray(0, at), msg.position).then(
        () => {
          if (msg.buf) parentPort!.postMessage({ seq: msg.seq, ok: true, buf }, [buf.buffer as ArrayBuffer]);
          else parentPort!.postMessage({ seq: msg.seq, ok: true });
        },
        (e) => {
          const { message, code } = e as NodeJS.ErrnoException;
          parentPort!.postMessage({ seq: msg.seq, ok: false, error: message, writeCode: code ?? 'EIO' });
        },
      ).finally(() => giveRestoreBuf(out));
      releasedBytes(garbage);
    }
  } catch (e) {
    parentPort!.postMessage({ seq: msg.seq, ok: false, error: (e as Error).message });
  }
}
