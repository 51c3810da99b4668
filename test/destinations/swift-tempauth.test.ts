// Swift backend with tempauth ("v1") against the real Swift lab.
import { createHash, randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { openBackend } from '../../src/engine/destinations/index.ts';
import { openSwiftBackend } from '../../src/engine/destinations/swift.ts';
import { ensureSwiftLab, labToken, rawListing, uniqueName, type SwiftLab } from '../helpers/swift-lab.ts';
import { backendConformance, collect, expectCode } from './conformance.ts';

const MiB = 1024 * 1024;
let lab: SwiftLab;
const container = uniqueName('swift-v1');

beforeAll(async () => {
  lab = await ensureSwiftLab();
});

const env = () => ({ ST_USER: lab.user, ST_KEY: lab.key });
// 1 MiB segments so the SLO path runs on a 3.5 MiB object.
const url = (extra = '') => new URL(`swift://${container}/repo/one?auth=${lab.authUrl}&segment_size=1M${extra}`);

backendConformance('swift (tempauth)', () => ({
  open: () => openSwiftBackend(url(), env()),
  openWithWrongSecret: () => openSwiftBackend(url(), { ...env(), ST_KEY: 'wrong-key-0815' }),
  wrongSecret: 'wrong-key-0815',
  largeSize: 3.5 * MiB + 17,
}));

describe('swift specifics', () => {
  it('stores a large object as an SLO whose segments go away with it', async () => {
    const b = await openSwiftBackend(url(), env());
    const data = randomBytes(2.5 * MiB);
    await b.put('slo/pack', data);
    const token = await labToken(lab);
    const head = await fetch(`${lab.storageUrl}/${container}/repo/one/slo/pack`, { method: 'HEAD', headers: { 'X-Auth-Token': token } });
    expect(head.headers.get('x-static-large-object')).toBe('True');
    const segments = (await rawListing(lab, `${container}_segments`)).filter((n) => n.startsWith('repo/one/slo/pack/'));
    expect(segments.length).toBe(3);
    await b.delete('slo/pack');
    expect((await rawListing(lab, `${container}_segments`)).filter((n) => n.startsWith('repo/one/slo/pack/'))).toEqual([]);
    await b.close();
  });

  it('gzips compressible objects (stored smaller, read back exact, logical sizes everywhere)', async () => {
    const b = await openSwiftBackend(url('&gzip=true'), env());
    const text = Buffer.from('{"chunks":["' + 'ab'.repeat(50_000) + '"]}');
    const noise = randomBytes(200_000);
    await b.put('gz/index.json', text);
    await b.put('gz/pack', noise);
    expect((await b.get('gz/index.json')).equals(text)).toBe(true);
    expect((await b.get('gz/pack')).equals(noise)).toBe(true);
    expect((await b.getRange('gz/index.json', 10, 20)).equals(text.subarray(10, 30))).toBe(true);
    expect((await b.getRange('gz/pack', 1000, 64)).equals(noise.subarray(1000, 1064))).toBe(true);
    expect(await b.stat('gz/index.json')).toEqual({ key: 'gz/index.json', size: text.length });
    expect(await collect(b.list('gz/'))).toEqual([
      { key: 'gz/index.json', size: text.length },
      { key: 'gz/pack', size: noise.length },
    ]);
    // What Swift holds: the compressible object gzipped, the random one as is.
    const token = await labToken(lab);
    const raw = await fetch(`${lab.storageUrl}/${container}/repo/one/gz/index.json`, { method: 'HEAD', headers: { 'X-Auth-Token': token } });
    expect(raw.headers.get('content-encoding')).toBe('gzip');
    expect(Number(raw.headers.get('content-length'))).toBeLessThan(text.length / 10);
    // A reader without the gzip setting still gets the plain bytes.
    const plain = await openSwiftBackend(url(), env());
    expect(createHash('sha256').update(await plain.get('gz/index.json')).digest('hex')).toBe(createHash('sha256').update(text).digest('hex'));
    await plain.close();
    await b.close();
  });

  it('gzips a large object and segments it', async () => {
    const b = await openSwiftBackend(url('&gzip=true&segment_size=64K'), env());
    const text = Buffer.from(Array.from({ length: 60_000 }, (_, i) => `line ${i} of a compressible index\n`).join(''));
    await b.put('gz/large', text);
    expect((await b.get('gz/large')).equals(text)).toBe(true);
    expect(await b.stat('gz/large')).toEqual({ key: 'gz/large', size: text.length });
    await b.delete('gz/large');
    expect(await b.stat('gz/large')).toBeNull();
    await b.close();
  });

  it('creates the container on open and reports where it is, without secrets', async () => {
    const fresh = uniqueName('swift-new');
    const b = await openBackend(`swift://${fresh}/x?auth=${lab.authUrl}`, env());
    expect(b.location).toBe(`swift://${fresh}/x/ at ${lab.authUrl}`);
    await b.put('k', Buffer.from('v'));
    expect(await rawListing(lab, fresh)).toEqual(['x/k']);
    await b.close();
  });

  it('rejects bad settings and missing credentials with INVALID', async () => {
    expect((await expectCode(openSwiftBackend(new URL(`swift://${container}/p?auth=${lab.authUrl}&segmentsize=1M`), env()), 'INVALID')).message).toContain(
      'unknown setting segmentsize',
    );
    expect((await expectCode(openSwiftBackend(new URL(`swift://${container}/p?auth=${lab.authUrl}&threads=0`), env()), 'INVALID')).message).toContain('threads');
    expect((await expectCode(openSwiftBackend(new URL(`swift://${container}/p`), env()), 'INVALID')).message).toContain('auth=');
    expect((await expectCode(openSwiftBackend(new URL(`swift://${container}/p?auth=${lab.authUrl}`), {}), 'INVALID')).message).toContain('ST_USER');
  });
});
