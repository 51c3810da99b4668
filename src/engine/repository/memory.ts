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

const EVERY = Number(process.env.GC_EVERY_MIB ?? 16) << 20;
let since = 0;

/** Call with the size of buffers just dropped. */
export function releasedBytes(n: number): void {
  since += n;
  if (since >= EVERY && gc) {
    since = 0;
    gc({ type: 'minor' });
  }
}
