// Dedup-aware attribution: exact fair shares, rounded so they still sum to the stored total.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { attribute, AttributionError, type ChunkReference } from '../../billing/attribution.ts';

describe('attribution', () => {
  it('gives unique bytes to their instance and splits a shared chunk 1/k each', () => {
    const refs: ChunkReference[] = [
      { instanceId: 'a', projectId: 'P', chunkId: 'c1', storedSize: 100n },
      { instanceId: 'a', projectId: 'P', chunkId: 'c2', storedSize: 30n },
      { instanceId: 'b', projectId: 'P', chunkId: 'c2', storedSize: 30n },
      { instanceId: 'c', projectId: 'Q', chunkId: 'c2', storedSize: 30n },
      { instanceId: 'c', projectId: 'Q', chunkId: 'c2', storedSize: 30n }, // listed twice: counts once
      { instanceId: 'b', projectId: 'P', chunkId: 'c3', storedSize: 7n },
      { instanceId: 'c', projectId: 'Q', chunkId: 'c3', storedSize: 7n },
    ];
    const r = attribute(refs);
    expect(r.storedTotal).toBe(137n);
    const by = Object.fromEntries(r.instances.map((s) => [s.id, s]));
    expect(by.a).toMatchObject({ uniqueBytes: 100n, totalBytes: 110n, sharedBytes: 10n, exact: { numerator: 110n, denominator: 1n } });
    // b: 30/3 + 7/2 = 13.5; c: 30/3 + 7/2 = 13.5 → one byte left over, to the smaller id on the tie.
    expect(by.b!.exact).toEqual({ numerator: 27n, denominator: 2n });
    expect(by.b!.totalBytes).toBe(14n);
    expect(by.c!.totalBytes).toBe(13n);
    const projects = Object.fromEntries(r.projects.map((s) => [s.id, s]));
    // P: 110 + 13.5 = 123.5, its only own chunk is c1; Q: 13.5.
    expect(projects.P).toMatchObject({ uniqueBytes: 100n, exact: { numerator: 247n, denominator: 2n } });
    expect(projects.P!.totalBytes + projects.Q!.totalBytes).toBe(137n);
  });

  it('rejects a chunk with two sizes and an instance in two projects', () => {
    expect(() => attribute([{ instanceId: 'a', projectId: 'P', chunkId: 'c', storedSize: 1 }, { instanceId: 'b', projectId: 'P', chunkId: 'c', storedSize: 2 }])).toThrow(AttributionError);
    expect(() => attribute([{ instanceId: 'a', projectId: 'P', chunkId: 'c', storedSize: 1 }, { instanceId: 'a', projectId: 'Q', chunkId: 'd', storedSize: 2 }])).toThrow(AttributionError);
  });

  it('sums exactly to the stored total, each share within one byte of its exact value (random references)', () => {
    const refArb = fc.record({ instance: fc.nat(11), chunk: fc.nat(40) });
    fc.assert(
      fc.property(fc.array(refArb, { maxLength: 150 }), fc.array(fc.bigInt(0n, 10n ** 15n), { minLength: 41, maxLength: 41 }), (raw, sizes) => {
        const refs = raw.map((r) => ({ instanceId: `i${r.instance}`, projectId: `p${r.instance % 4}`, chunkId: `c${r.chunk}`, storedSize: sizes[r.chunk]! }));
        const res = attribute(refs);
        const chunks = new Map(refs.map((r) => [r.chunkId, r.storedSize]));
        const total = [...chunks.values()].reduce((a, b) => a + b, 0n);
        expect(res.storedTotal).toBe(total);
        expect(res.instances.reduce((a, s) => a + s.totalBytes, 0n)).toBe(total);
        expect(res.projects.reduce((a, s) => a + s.totalBytes, 0n)).toBe(total);
        // Brute force of the exact shares, in a common denominator (lcm 1..12 = 27720).
        const L = 27720n;
        const exact = new Map<string, bigint>();
        for (const [chunk, size] of chunks) {
          const users = new Set(refs.filter((r) => r.chunkId === chunk).map((r) => r.instanceId));
          for (const u of users) exact.set(u, (exact.get(u) ?? 0n) + (size * L) / BigInt(users.size));
        }
        for (const s of [...res.instances, ...res.projects]) {
          expect(s.sharedBytes).toBeGreaterThanOrEqual(0n);
          const e = s.exact.numerator * L / s.exact.denominator;
          const diff = s.totalBytes * L - e;
          expect(diff > -L && diff < L).toBe(true);
        }
        for (const s of res.instances) expect(s.exact.numerator * L / s.exact.denominator).toBe(exact.get(s.id));
      }),
      { numRuns: 300 },
    );
  });
});
