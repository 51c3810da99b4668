// Chunk compression: zstd level 1 (zstd-napi). bench/codecs.ts on the bench's day1 image (non-zero
// 256 KiB chunks, one core): zstd -1 637 MB/s at ratio 1.64; brotli q1 (node:zlib) 408 MB/s at
// 1.62 — zstd is both faster and smaller, and decompresses several times faster. A chunk that does not
// shrink by at least 1/32 is stored raw (random data), which saves the decompression on restore.
import { compress as zstdCompress, decompress as zstdDecompress } from 'zstd-napi';
import { FLAG_ZSTD } from './format.ts';

export function compressChunk(plain: Buffer, level: number): { data: Buffer; flags: number } {
  const z = zstdCompress(plain, { compressionLevel: level });
  if (z.length <= plain.length - (plain.length >> 5)) return { data: z, flags: FLAG_ZSTD };
  return { data: plain, flags: 0 };
}

export function decompressChunk(data: Buffer, flags: number): Buffer {
  return flags & FLAG_ZSTD ? zstdDecompress(data) : data;
}
