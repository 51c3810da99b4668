// Throughput of the object-store backends against the Swift lab (test/labs/swift.sh, started
// here if needed): put then get of 64 MiB in pack-sized objects, per backend and object size.
//
//   npm run bench:destinations            # TOTAL_MIB=64 THREADS=8 ROUNDS=3
//
// Prints MiB/s per round and the median. Through the lab's single-process proxy on loopback,
// so this measures our client's overhead against a Swift that is itself the bottleneck.
import { randomBytes } from 'node:crypto';
import type { Backend } from '../src/engine/destinations/backend.ts';
import { openS3Backend } from '../src/engine/destinations/s3.ts';
import { openSwiftBackend } from '../src/engine/destinations/swift.ts';
import { ensureSwiftLab, uniqueName } from '../test/helpers/swift-lab.ts';

const MiB = 1024 * 1024;
const totalMiB = Number(process.env.TOTAL_MIB ?? 64);
const threads = Number(process.env.THREADS ?? 8);
const rounds = Number(process.env.ROUNDS ?? 3);

const lab = await ensureSwiftLab();
const backends: Array<[string, () => Promise<Backend>]> = [
  [
    's3',
    () =>
      openS3Backend(new URL(`s3://${uniqueName('bench-s3')}/b?endpoint=${lab.s3Endpoint}&region=${lab.s3Region}&threads=${threads}`), {
        AWS_ACCESS_KEY_ID: lab.accessKeyId,
        AWS_SECRET_ACCESS_KEY: lab.secretAccessKey,
      }),
  ],
  ['swift', () => openSwiftBackend(new URL(`swift://${uniqueName('bench-swift')}/b?auth=${lab.authUrl}&threads=${threads}`), { ST_USER: lab.user, ST_KEY: lab.key })],
];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rate = (bytes: number, ms: number) => bytes / MiB / (ms / 1000);

for (const objectMiB of [8, 16, 32]) {
  const count = Math.max(1, Math.round(totalMiB / objectMiB));
  const objects = Array.from({ length: count }, () => randomBytes(objectMiB * MiB));
  const bytes = count * objectMiB * MiB;
  for (const [name, open] of backends) {
    const b = await open();
    const puts: number[] = [];
    const gets: number[] = [];
    for (let r = 0; r < rounds; r++) {
      let t = performance.now();
      await Promise.all(objects.map((o, i) => b.put(`data/${r}/${i}`, o)));
      puts.push(rate(bytes, performance.now() - t));
      t = performance.now();
      const back = await Promise.all(objects.map((_, i) => b.get(`data/${r}/${i}`)));
      gets.push(rate(bytes, performance.now() - t));
      if (!back.every((x, i) => x.equals(objects[i]))) throw new Error(`${name}: read back differs`);
      await Promise.all(objects.map((_, i) => b.delete(`data/${r}/${i}`)));
    }
    const fmt = (xs: number[]) => `${xs.map((x) => x.toFixed(0)).join('/')} (median ${median(xs).toFixed(0)})`;
    console.log(`${name.padEnd(5)} ${count} × ${objectMiB} MiB, ${threads} threads: put ${fmt(puts)} MiB/s, get ${fmt(gets)} MiB/s`);
    await b.close();
  }
}
