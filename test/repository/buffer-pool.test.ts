import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BufferPool } from '../../src/engine/repository/buffer-pool.ts';
import { WorkerPool } from '../../src/engine/repository/workers.ts';
import { chunkId, open } from '../../src/engine/repository/keys.ts';
import { FLAG_ZSTD } from '../../src/engine/repository/format.ts';
import { decompress as zstdDecompress } from 'zstd-napi';

describe('buffer pool', () => {
  it('reuses its buffers, ignores foreign ones, and takes back a batch that went to a worker and returned sealed in place', async () => {
    const pool = new BufferPool(1024 + 64, 4);
    const a = pool.take(1000);
    expect(a.length).toBe(1000);
    pool.give(a);
    expect(pool.take(10).buffer).toBe(a.buffer);
    pool.give(Buffer.alloc(1024 + 64)); // not the pool's
    expect(pool.take(10).buffer).not.toBe(a.buffer);
    expect(() => pool.take(2000)).toThrow(RangeError);

    const keys = { dataKey: randomBytes(32), idKey: randomBytes(32) };
    const workers = new WorkerPool(keys as never, 1, 1);
    try {
      // A batch of four chunks: random (stored raw, so its blob is 28 bytes longer than the chunk),
      // compressible, zero, random. Blobs are written from the buffer's start over the chunks.
      const lengths = [1024, 1024, 1024, 1000];
      const at = 28 * lengths.length;
      const chunks = [randomBytes(1024), Buffer.alloc(1024, 'strongbox '), Buffer.alloc(1024), randomBytes(1000)];
      const batches = new BufferPool(at + 4096, 2);
      const batch = batches.take(at + 4072);
      Buffer.concat(chunks).copy(batch, at);
      const r = await workers.chunks(batch, { at, lengths, seal: 'all' });
      expect(batch.buffer.byteLength).toBe(0); // moved, not copied
      expect([...r.zero]).toEqual([0, 0, 1, 0]);
      expect(r.sealed.map((s) => s.chunk)).toEqual([0, 1, 3]);
      expect(r.sealed[0].length).toBe(1024 + 28);
      for (const s of r.sealed) {
        const id = r.ids.subarray(s.chunk * 32, s.chunk * 32 + 32);
        expect(id).toEqual(chunkId(keys.idKey, chunks[s.chunk]));
        const plain = open(keys.dataKey, r.buf.subarray(s.offset, s.offset + s.length), id);
        expect(s.flags & FLAG_ZSTD ? Buffer.from(zstdDecompress(plain)) : plain).toEqual(chunks[s.chunk]);
      }
      batches.give(r.buf);
      expect(batches.take(1).buffer).toBe(r.buf.buffer);
    } finally {
      await workers.close();
    }
  });
});
