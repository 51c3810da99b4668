// Chunk compression: zstd level 1 (zstd-napi). bench/codecs.ts on the bench's day1 image (non-zero
// 256 KiB chunks, one core): zstd -1 637 MB/s at ratio 1.64; brotli q1 (node:zlib) 408 MB/s at
// 1.62 — zstd is both faster and smaller, and decompresses several times faster. A chunk that does not
// shrink by at least 1/32 is stored raw (random data), which saves the decompression on restore.
// Random data costs zstd nearly as much as compressible data (~1.2 GB/s a core) for nothing, so a
// chunk is first probed: PROBES small slices spread over it are compressed, and when none of them
// shrinks, the chunk is taken as incompressible and stored raw without compressing it whole
// (~1/16 of the work). A chunk that is only partly random usually has a probe in its other part.
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

/** Probes per chunk and their size; chunks smaller than PROBE_MIN are always compressed whole. */
const PROBES = 4;
const PROBE_BYTES = 4096;
const PROBE_MIN = 64 << 10;

export class ChunkCompressor {
  private ctx = new CCtx();
  private out = Buffer.alloc(0);
  private probeOut = Buffer.allocUnsafeSlow(compressBound(PROBE_BYTES));

  constructor(level: number) {
    this.ctx.setParameter(zstd.CParameter.compressionLevel, level);
  }

  /** The bytes to store (valid until the next call) and their flags. */
  compress(plain: Uint8Array): { data: Uint8Array; flags: number } {
    if (this.incompressible(plain)) return { data: plain, flags: 0 };
    const bound = compressBound(plain.length);
    if (this.out.length < bound) this.out = Buffer.allocUnsafeSlow(bound);
    const n = this.ctx.compress2(this.out, plain);
    if (worthIt(n, plain.length)) return { data: this.out.subarray(0, n), flags: FLAG_ZSTD };
    return { data: plain, flags: 0 };
  }

  /** Does no probe of `plain` shrink enough to be worth it? */
  private incompressible(plain: Uint8Array): boolean {
    if (plain.length < PROBE_MIN) return false;
    const step = Math.floor(plain.length / PROBES);
    for (let k = 0; k < PROBES; k++) {
      const at = k * step + ((step - PROBE_BYTES) >> 1);
      const n = this.ctx.compress2(this.probeOut, plain.subarray(at, at + PROBE_BYTES));
      if (worthIt(n, PROBE_BYTES)) return false;
    }
    return true;
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
