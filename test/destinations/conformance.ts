// The Backend contract, run against every object-store backend on the real Swift lab.
// Each caller gives a fresh container/bucket, so files can run in parallel.
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend, ObjectInfo } from '../../src/engine/destinations/backend.ts';
import { BackendError } from '../../src/engine/destinations/backend.ts';

export type ConformanceTarget = {
  open: () => Promise<Backend>;
  /** Opens with a wrong secret; must fail with DENIED and never show `secret`. */
  openWithWrongSecret: () => Promise<Backend>;
  wrongSecret: string;
  /** An object size above the multipart/segment threshold the target is opened with. */
  largeSize: number;
};

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

export async function collect(it: AsyncIterable<ObjectInfo>): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  for await (const o of it) out.push(o);
  return out.sort((a, b) => a.key.localeCompare(b.key));
}

export async function expectCode(promise: Promise<unknown>, code: BackendError['code']): Promise<BackendError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, `expected a BackendError ${code}`).toBeInstanceOf(BackendError);
  expect((error as BackendError).code).toBe(code);
  return error as BackendError;
}

export function backendConformance(name: string, target: () => ConformanceTarget): void {
  describe(`${name}: Backend contract`, () => {
    let b: Backend;
    beforeAll(async () => {
      b = await target().open();
    });
    afterAll(async () => {
      await b?.close();
    });

    it('puts and gets bytes exactly, including an empty object', async () => {
      const data = randomBytes(300_001);
      await b.put('data/ab/abcdef', data);
      expect(sha256(await b.get('data/ab/abcdef'))).toBe(sha256(data));
      await b.put('empty', new Uint8Array(0));
      expect((await b.get('empty')).length).toBe(0);
      expect(await b.stat('empty')).toEqual({ key: 'empty', size: 0 });
    });

    it('reads ranges: start, middle, end, and a range running past the end', async () => {
      const data = randomBytes(100_000);
      await b.put('ranges/obj', data);
      expect((await b.getRange('ranges/obj', 0, 10)).equals(data.subarray(0, 10))).toBe(true);
      expect((await b.getRange('ranges/obj', 4096, 5000)).equals(data.subarray(4096, 9096))).toBe(true);
      expect((await b.getRange('ranges/obj', 99_990, 10)).equals(data.subarray(99_990))).toBe(true);
      expect((await b.getRange('ranges/obj', 99_998, 10)).equals(data.subarray(99_998))).toBe(true);
      expect((await b.getRange('ranges/obj', 5, 0)).length).toBe(0);
    });

    it('stats present and missing objects', async () => {
      await b.put('stat/one', Buffer.from('12345'));
      expect(await b.stat('stat/one')).toEqual({ key: 'stat/one', size: 5 });
      expect(await b.stat('stat/missing')).toBeNull();
    });

    it('answers NOT_FOUND for a missing key, naming the key', async () => {
      const e = await expectCode(b.get('nope/missing'), 'NOT_FOUND');
      expect(e.message).toContain('nope/missing');
      expect(e.message).toContain(b.location);
      await expectCode(b.getRange('nope/missing', 0, 10), 'NOT_FOUND');
      await expectCode(b.getRange('nope/missing', 0, 0), 'NOT_FOUND');
    });

    it('lists by prefix with sizes, relative to the destination prefix', async () => {
      await Promise.all([
        b.put('lst/data/aa/1', Buffer.alloc(1, 1)),
        b.put('lst/data/ab/2', Buffer.alloc(22, 2)),
        b.put('lst/index/1', Buffer.alloc(333, 3)),
      ]);
      expect(await collect(b.list('lst/'))).toEqual([
        { key: 'lst/data/aa/1', size: 1 },
        { key: 'lst/data/ab/2', size: 22 },
        { key: 'lst/index/1', size: 333 },
      ]);
      expect((await collect(b.list('lst/data/'))).map((o) => o.key)).toEqual(['lst/data/aa/1', 'lst/data/ab/2']);
      expect((await collect(b.list('lst/data/a'))).length).toBe(2);
      expect(await collect(b.list('lst/none/'))).toEqual([]);
    });

    it('lists more than 1000 keys (pagination)', async () => {
      const keys = Array.from({ length: 1005 }, (_, i) => `many/${String(i).padStart(5, '0')}`);
      // 8 at a time: the lab's single-process proxy does ~150 small PUTs a second at best.
      for (let i = 0; i < keys.length; i += 8) {
        await Promise.all(keys.slice(i, i + 8).map((k) => b.put(k, Buffer.from(k))));
      }
      const listed = await collect(b.list('many/'));
      expect(listed.length).toBe(1005);
      expect(listed.map((o) => o.key)).toEqual(keys);
      expect(listed.every((o) => o.size === 10)).toBe(true);
    }, 180_000);

    it('deletes; deleting a missing key is fine', async () => {
      await b.put('del/x', Buffer.from('x'));
      await b.delete('del/x');
      expect(await b.stat('del/x')).toBeNull();
      await expectCode(b.get('del/x'), 'NOT_FOUND');
      await b.delete('del/x');
      await b.delete('del/never-existed');
      expect(await collect(b.list('del/'))).toEqual([]);
    });

    it('stores a large object above the multipart/segment threshold, byte-exact', async () => {
      const size = target().largeSize;
      const data = randomBytes(size);
      await b.put('packs/large', data);
      expect(await b.stat('packs/large')).toEqual({ key: 'packs/large', size });
      expect(sha256(await b.get('packs/large'))).toBe(sha256(data));
      // A range across the first part/segment boundary and one at the very end.
      const mid = Math.floor(size / 2);
      expect((await b.getRange('packs/large', mid - 1000, 2000)).equals(data.subarray(mid - 1000, mid + 1000))).toBe(true);
      expect((await b.getRange('packs/large', size - 7, 7)).equals(data.subarray(size - 7))).toBe(true);
      expect(await collect(b.list('packs/'))).toEqual([{ key: 'packs/large', size }]);
      await b.delete('packs/large');
      expect(await b.stat('packs/large')).toBeNull();
    });

    it('runs many transfers at once', async () => {
      const blobs = Array.from({ length: 12 }, () => randomBytes(512 * 1024));
      await Promise.all(blobs.map((d, i) => b.put(`par/${i}`, d)));
      const back = await Promise.all(blobs.map((_, i) => b.get(`par/${i}`)));
      expect(back.map(sha256)).toEqual(blobs.map(sha256));
    });

    it('refuses wrong credentials with DENIED and a message without the secret', async () => {
      const t = target();
      const e = await expectCode(t.openWithWrongSecret(), 'DENIED');
      expect(e.message.length).toBeGreaterThan(20);
      expect(e.message).not.toContain(t.wrongSecret);
      expect(String(e)).not.toContain(t.wrongSecret);
    });
  });
}
