// Chooses the chunk codec: zstd level 1 (zstd-napi) vs brotli quality 1 (node:zlib) on the non-zero
// chunks of the bench's day1 image, single-threaded. Usage: node --import tsx bench/codecs.ts [image] [chunk bytes]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { compress } from 'zstd-napi';

const file = process.argv[2] ?? path.join(os.tmpdir(), 'strongbox-bench-1024/images/day1.raw');
const cs = Number(process.argv[3] ?? 256 << 10);
const fd = fs.openSync(file, 'r');
const size = fs.fstatSync(fd).size;
const chunks: Buffer[] = [];
const zero = Buffer.alloc(cs);
for (let off = 0; off < size && chunks.length < 1600; off += cs) {
  const b = Buffer.allocUnsafe(cs);
  const n = fs.readSync(fd, b, 0, cs, off);
  if (!b.subarray(0, n).equals(zero.subarray(0, n))) chunks.push(b.subarray(0, n));
}
const raw = chunks.reduce((s, c) => s + c.length, 0);
for (const [name, fn] of [
  ['zstd -1', (b: Buffer) => compress(b, { compressionLevel: 1 })],
  ['brotli q1', (b: Buffer) => zlib.brotliCompressSync(b, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 1, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: b.length } })],
] as const) {
  const t = process.cpuUsage();
  let out = 0;
  for (const c of chunks) out += Math.min(fn(c).length, c.length);
  const u = process.cpuUsage(t);
  const cpu = (u.user + u.system) / 1e6;
  console.log(`${name.padEnd(10)} ${(raw / 1e6 / cpu).toFixed(0).padStart(5)} MB/s per core (CPU time)  ratio ${(raw / out).toFixed(2)}  (${(raw / 2 ** 20).toFixed(0)} MiB of non-zero ${cs >> 10} KiB chunks)`);
}
