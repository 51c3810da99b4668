// Keeps peak memory near the live working set. Chunk buffers live outside the V8 heap, so V8
// frees dead ones late (it waits for tens of MB of "external" memory per thread before it
// collects); with three threads streaming 1 GB/s that is hundreds of MB of garbage. A minor GC
// (~0.5 ms: it frees young ArrayBuffers) after every few MB keeps the garbage bounded.
import v8 from 'node:v8';
import vm from 'node:vm';

let gc: ((o?: { type: 'minor' | 'major' }) => void) | null = null;
try {
  v8.setFlagsFromString('--expose-gc');
  gc = vm.runInNewContext('gc') as typeof gc;
} catch {
  gc = null; // without it memory is still bounded, only higher
}

// 2 MiB: measured on the bench's day1 backup, peak RSS 195 MiB with 16, 112 with 4, 104 with 2;
// a minor GC of a worker's small heap costs well under a millisecond.
const EVERY = Number(process.env.GC_EVERY_MIB ?? 2) << 20;
let since = 0;

/** Call with the size of buffers just dropped, as a number read before any transfer (a transferred
 *  buffer's views all read length 0 afterwards). */
export function releasedBytes(n: number): void {
  since += n;
  if (since >= EVERY && gc) {
    since = 0;
    gc({ type: 'minor' });
  }
}
