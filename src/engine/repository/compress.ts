// Chunk compression: zstd level 1 (zstd-napi). bench/codecs.ts on the bench's day1 image (non-zero
// 256 KiB chunks, one core): zstd -1 637 MB/s at ratio 1.64; brotli q1 (node:zlib) 408 MB/s at
// 1.62 — zstd is both faster and smaller, and decompresses several times faster. A chunk that does not
// shrink by at least 1/32 is stored raw (random data), which saves the decompression on restore.
//
// The worker threads use the contexts below: one zstd context and one output buffer each, reused
// for every chunk, so compressing and decompressing allocate nothing per chunk.
import zstd from 'zstd-napi/binding.js';
import { FLAG_ZSTD } from './format.ts';

const { CCtx, DCtx, compressBound } = zstd;

/** Does `compressed` (of a `plain`-byte chunk) save enough to be worth storing compressed? */
function worthIt(compressed: number, plain: number): boolean {
  return compressed <= plain - (plain >> 5);
}

export class ChunkCompressor {
  private ctx = new CCtx();
  private out = Buffer.alloc(0);

  constructor(level: number) {
    this.ctx.setParameter(zstd.CParameter.compressionLevel, level);
  }

  /** The bytes to store (valid until the next call) and their flags. */
  compress(plain: Uint8Array): { data: Uint8Array; flags: number } {
    const bound = compressBound(plain.length);
    if (this.out.length < bound) this.out = Buffer.allocUnsafeSlow(bound);
    const n = this.ctx.compress2(this.out, plain);
    if (worthIt(n, plain.length)) return { data: this.out.subarray(0, n), flags: FLAG_ZSTD };
    return { data: plain, flags: 0 };
  }
}

export class ChunkDecompressor {
  private ctx = new DCtx();

  /** Writes the chunk `data` holds into `into`; returns its length. */
  decompressInto(data: Uint8Array, flags: number, into: Uint8Array): number {
    if (!(flags & FLAG_ZSTD)) {
      if (data.length > into.length) throw new Error('chunk larger than expected');
      into.set(data);
      return data.length;
    }
    return this.ctx.decompress(into, data);
  }
}
