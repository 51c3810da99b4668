// Reused buffers for chunks and ranged reads. Freeing big buffers is what makes a busy process
// grow: V8 frees an ArrayBuffer only at its next GC, and glibc keeps what several threads freed
// (each in its own arena, its mmap threshold raised by the first big free) — measured ~40-60 MB
// of growth for buffers allocated per chunk, ~5 MB for the same traffic through reused buffers.
// A pool's buffers travel to the worker threads and back by transfer (they own their memory).

const lendable = new WeakSet<ArrayBuffer>();

/** Marks memory that came back from a worker thread as ours again (a transfer hands over a new
 *  ArrayBuffer object for the same memory). */
export function reclaim(buf: Uint8Array): Buffer {
  lendable.add(buf.buffer as ArrayBuffer);
  return Buffer.from(buf.buffer, buf.byteOffset, buf.length);
}

/** May this buffer's memory be moved to another thread (it is ours, or wholly its own)? */
export function transferable(buf: Uint8Array): boolean {
  const ab = buf.buffer as ArrayBuffer;
  return lendable.has(ab) || (buf.byteOffset === 0 && buf.byteLength === ab.byteLength);
}

export class BufferPool {
  private free: ArrayBuffer[] = [];

  constructor(
    /** Bytes of every buffer. */
    readonly capacity: number,
    /** Buffers kept for reuse at most (the callers bound how many are out at once). */
    private keep: number,
  ) {}

  /** A buffer of `length` (≤ capacity) bytes, of undefined content. */
  take(length: number): Buffer {
    if (length > this.capacity) throw new RangeError(`${length} bytes asked of a pool of ${this.capacity}-byte buffers`);
    let ab = this.free.pop();
    if (!ab) {
      ab = new ArrayBuffer(this.capacity);
      lendable.add(ab);
    }
    return Buffer.from(ab, 0, length);
  }

  /** Gives a buffer back (one of this pool's, not moved elsewhere since); others are ignored. */
  give(buf: Uint8Array | null | undefined): void {
    const ab = buf?.buffer as ArrayBuffer | undefined;
    if (ab && ab.byteLength === this.capacity && lendable.has(ab) && this.free.length < this.keep && !this.free.includes(ab)) this.free.push(ab);
  }
}
