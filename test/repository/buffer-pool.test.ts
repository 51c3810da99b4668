import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BufferPool } from '../../src/engine/repository/buffer-pool.ts';
import { WorkerPool } from '../../src/engine/repository/workers.ts';

describe('buffer pool', () => {
  it('reuses its buffers, ignores foreign ones, and takes back buffers that went to a worker and returned', async () => {
    const pool = new BufferPool(1024 + 64, 4);
    const a = pool.take(1000);
    expect(a.length).toBe(1000);
    pool.give(a);
    expect(pool.take(10).buffer).toBe(a.buffer);
    pool.give(Buffer.alloc(1024 + 64)); // not the pool's
    expect(pool.take(10).buffer).not.toBe(a.buffer);
    expect(() => pool.take(2000)).toThrow(RangeError);

    const workers = new WorkerPool({ dataKey: randomBytes(32), idKey: randomBytes(32) } as never, 1, 1);
    try {
      const chunk = pool.take(1024);
      randomBytes(1024).copy(chunk);
      const h = await workers.hash(chunk);
      expect(chunk.buffer.byteLength).toBe(0); // moved, not copied
      const sealed = await workers.seal(h.buf, h.id);
      expect(sealed.blob.length).toBe(1024 + 28); // random data is stored raw, written over the chunk
      pool.give(sealed.blob);
      expect(pool.take(1).buffer).toBe(sealed.blob.buffer);
    } finally {
      await workers.close();
    }
  });
});
