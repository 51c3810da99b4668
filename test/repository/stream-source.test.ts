// StreamDiskSource: a stream read front to back as the backup asks for chunks (several at once,
// in increasing offsets), gaps skipped, and a stream of the wrong length refused.
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { StreamDiskSource } from '../../src/engine/repository/stream-source.ts';

/** The bytes in uneven pieces, as a network delivers them. */
const pieces = (b: Buffer) => Readable.from((function* () {
  for (let o = 0, k = 1; o < b.length; o += k, k = (k * 7 + 3) % 5000 + 1) yield b.subarray(o, Math.min(b.length, o + k));
})());

describe('StreamDiskSource', () => {
  it('serves concurrent in-order reads and gaps with the right bytes, and runs onEnd once on the last byte', async () => {
    const data = randomBytes(100_000);
    let ends = 0;
    let seen = 0;
    const s = new StreamDiskSource(pieces(data), data.length, { onData: (c) => (seen += c.length), onEnd: () => ends++ });
    const reads = [s.read(0, 10_000), s.read(10_000, 10_000), s.read(50_000, 10_000), s.read(95_000, 10_000)];
    const [a, b, c, d] = await Promise.all(reads);
    expect(a!.equals(data.subarray(0, 10_000))).toBe(true);
    expect(b!.equals(data.subarray(10_000, 20_000))).toBe(true);
    expect(c!.equals(data.subarray(50_000, 60_000))).toBe(true);
    expect(d!.equals(data.subarray(95_000))).toBe(true); // short at the end of the disk
    expect(ends).toBe(1);
    expect(seen).toBe(data.length); // skipped bytes pass through onData too (checksums cover them)
    await s.close();
  });

  it('refuses a read behind the position, a stream that ends early and one longer than announced', async () => {
    const data = randomBytes(10_000);
    const behind = new StreamDiskSource(pieces(data), data.length);
    await behind.read(0, 5000);
    await expect(behind.read(1000, 10)).rejects.toThrow(/behind the stream position/);
    await behind.close();
    const short = new StreamDiskSource(pieces(data), data.length + 10, { name: 'short' });
    await expect(short.read(0, data.length + 10)).rejects.toThrow(/short: ended at 10000 of 10010 bytes/);
    await short.close();
    const long = new StreamDiskSource(pieces(data), data.length - 10, { name: 'long', onEnd: () => { throw new Error('must not run'); } });
    await expect(long.read(0, data.length - 10)).rejects.toThrow(/more bytes than the announced 9990/);
    await long.close();
  });

  it('a failing onEnd check fails the last read', async () => {
    const data = randomBytes(1000);
    const s = new StreamDiskSource(pieces(data), data.length, { onEnd: () => { throw new Error('checksum mismatch'); } });
    await expect(s.read(0, 500)).resolves.toHaveLength(500);
    await expect(s.read(500, 500)).rejects.toThrow('checksum mismatch');
  });
});
