// Body of a worker thread: the CPU-heavy per-chunk work (HMAC-SHA256 id, zstd, AES-256-GCM, and
// the reverse with verification) runs here so every core is busy while the main thread reads and
// writes. Buffers move in and out by transfer, never by copy.
import { parentPort, workerData } from 'node:worker_threads';
import { chunkId, open, seal } from './keys.ts';
import { compressChunk, decompressChunk } from './compress.ts';
import { releasedBytes } from './memory.ts';

export type WorkerRequest =
  | { op: 'hash'; seq: number; buf: Buffer }
  | { op: 'seal'; seq: number; buf: Buffer; id: Buffer }
  | { op: 'open'; seq: number; buf: Buffer; blobs: { offset: number; length: number; flags: number; rawLength: number; id: Buffer }[] };

export type WorkerResponse =
  | { seq: number; ok: true; id?: Buffer; buf?: Buffer; blob?: Buffer; flags?: number; chunks?: Buffer[] }
  | { seq: number; ok: false; error: string; blobIndex?: number };

const { dataKey, idKey, level } = workerData as { dataKey: Uint8Array; idKey: Uint8Array; level: number };
const dk = Buffer.from(dataKey);
const ik = Buffer.from(idKey);

function own(b: Buffer): Buffer {
  // A transferable result needs its own ArrayBuffer (native or pooled buffers cannot be moved).
  if (b.byteOffset === 0 && b.byteLength === b.buffer.byteLength) return b;
  const c = Buffer.allocUnsafeSlow(b.length);
  b.copy(c);
  return c;
}

parentPort!.on('message', (msg: WorkerRequest) => {
  try {
    if (msg.op === 'hash') {
      const buf = Buffer.from(msg.buf.buffer, msg.buf.byteOffset, msg.buf.length);
      const id = chunkId(ik, buf);
      parentPort!.postMessage({ seq: msg.seq, ok: true, id, buf }, [buf.buffer as ArrayBuffer]);
    } else if (msg.op === 'seal') {
      const buf = Buffer.from(msg.buf.buffer, msg.buf.byteOffset, msg.buf.length);
      const { data, flags } = compressChunk(buf, level);
      const blob = seal(dk, data, Buffer.from(msg.id.buffer, msg.id.byteOffset, msg.id.length));
      parentPort!.postMessage({ seq: msg.seq, ok: true, blob, flags }, [blob.buffer as ArrayBuffer]);
      releasedBytes(buf.length + data.length);
    } else {
      const buf = Buffer.from(msg.buf.buffer, msg.buf.byteOffset, msg.buf.length);
      const chunks: Buffer[] = [];
      for (let i = 0; i < msg.blobs.length; i++) {
        const b = msg.blobs[i];
        const id = Buffer.from(b.id.buffer, b.id.byteOffset, b.id.length);
        let plain: Buffer;
        try {
          plain = decompressChunk(open(dk, buf.subarray(b.offset, b.offset + b.length), id), b.flags);
        } catch (e) {
          parentPort!.postMessage({ seq: msg.seq, ok: false, error: `cannot decrypt or decompress: ${(e as Error).message}`, blobIndex: i });
          return;
        }
        if (plain.length !== b.rawLength || !chunkId(ik, plain).equals(id)) {
          parentPort!.postMessage({ seq: msg.seq, ok: false, error: 'content does not match its id', blobIndex: i });
          return;
        }
        chunks.push(own(plain));
      }
      parentPort!.postMessage({ seq: msg.seq, ok: true, chunks }, chunks.map((c) => c.buffer as ArrayBuffer));
      releasedBytes(buf.length * 2);
    }
  } catch (e) {
    parentPort!.postMessage({ seq: msg.seq, ok: false, error: (e as Error).message });
  }
});
