// Faults between the backends and the real Swift lab, injected by a proxy: 5xx answers,
// stalls past the timeout, connection resets, bodies cut mid-transfer, and a server that stops
// in the middle of an upload. Retries must absorb the passing faults; a lasting one must end in
// a clean UNAVAILABLE that names the destination (never a credential), with nothing
// half-written visible afterwards.
import { randomBytes } from 'node:crypto';
import type http from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../../src/engine/destinations/backend.ts';
import { openS3Backend } from '../../src/engine/destinations/s3.ts';
import { openSwiftBackend } from '../../src/engine/destinations/swift.ts';
import { FaultProxy } from '../helpers/fault-proxy.ts';
import { ensureSwiftLab, rawListing, uniqueName, type SwiftLab } from '../helpers/swift-lab.ts';
import { collect, expectCode } from './conformance.ts';

const MiB = 1024 * 1024;
let lab: SwiftLab;
let proxy: FaultProxy;

beforeAll(async () => {
  lab = await ensureSwiftLab();
  proxy = await FaultProxy.start(lab.proxyUrl);
});
afterEach(() => {
  proxy.up();
  proxy.clear();
});
afterAll(async () => {
  await proxy?.close();
});

type Kind = {
  name: string;
  container: string;
  secret: () => string;
  /** Opens through the fault proxy with short timeouts and few retries. */
  viaProxy: (settings: string) => Promise<Backend>;
  /** Opens straight to the lab: the truth after a fault. */
  direct: () => Promise<Backend>;
  /** Threshold above which the backend writes in parts/segments (set by viaProxy's URL). */
  largeSize: number;
  isPartUpload: (req: http.IncomingMessage) => boolean;
  /** Where the server keeps parts/segments of large objects. */
  segmentContainer: string;
  /** The request that makes a large object visible (multipart completion / SLO manifest). */
  isFinalStep: (req: http.IncomingMessage) => boolean;
};

const s3Bucket = uniqueName('fault-s3');
const swiftContainer = uniqueName('fault-swift');
const s3Env = () => ({ AWS_ACCESS_KEY_ID: lab.accessKeyId, AWS_SECRET_ACCESS_KEY: lab.secretAccessKey });
const swiftEnv = () => ({ ST_USER: lab.user, ST_KEY: lab.key });

const kinds: Kind[] = [
  {
    name: 's3',
    container: s3Bucket,
    secret: () => lab.secretAccessKey,
    viaProxy: (settings) =>
      openS3Backend(new URL(`s3://${s3Bucket}/r?endpoint=${proxy.url}&region=${lab.s3Region}&part_size=5M&multipart_threshold=5M&${settings}`), s3Env()),
    direct: () => openS3Backend(new URL(`s3://${s3Bucket}/r?endpoint=${lab.s3Endpoint}&region=${lab.s3Region}`), s3Env()),
    largeSize: 12 * MiB,
    isPartUpload: (req) => req.method === 'PUT' && /[?&]partNumber=/.test(req.url!),
    segmentContainer: `${s3Bucket}+segments`, // where Swift's s3api keeps multipart parts
    isFinalStep: (req) => req.method === 'POST' && /[?&]uploadId=/.test(req.url!),
  },
  {
    name: 'swift',
    container: swiftContainer,
    secret: () => lab.key,
    // Through the proxy, tempauth hands out a storage URL on the proxy too (it echoes Host).
    viaProxy: (settings) => openSwiftBackend(new URL(`swift://${swiftContainer}/r?auth=${proxy.url}/auth/v1.0&segment_size=1M&${settings}`), swiftEnv()),
    direct: () => openSwiftBackend(new URL(`swift://${swiftContainer}/r?auth=${lab.authUrl}`), swiftEnv()),
    largeSize: 4 * MiB,
    isPartUpload: (req) => req.method === 'PUT' && req.url!.includes('_segments/'),
    segmentContainer: `${swiftContainer}_segments`,
    isFinalStep: (req) => req.method === 'PUT' && req.url!.includes('multipart-manifest=put'),
  },
];

const objectRequest = (method: string, key: string) => (req: http.IncomingMessage) =>
  req.method === method && decodeURIComponent(req.url!.split('?')[0]).endsWith(`/r/${key}`);
const count = (method: string, key: string) => proxy.seen.filter((s) => s.method === method && decodeURIComponent(s.url.split('?')[0]).endsWith(`/r/${key}`)).length;

describe.each(kinds)('$name under faults', (kind) => {
  it('retries 5xx answers and the put succeeds', async () => {
    const b = await kind.viaProxy('retries=3');
    const data = randomBytes(300_000);
    proxy.add({ match: objectRequest('PUT', 'f/5xx'), fault: { kind: 'status', status: 503 }, times: 2 });
    await b.put('f/5xx', data);
    expect(count('PUT', 'f/5xx')).toBe(3);
    expect((await b.get('f/5xx')).equals(data)).toBe(true);
    await b.close();
  });

  it('retries a response that stalls past the timeout', async () => {
    const b = await kind.viaProxy('retries=3&timeout=0.5');
    const data = randomBytes(100_000);
    await b.put('f/slow', data);
    proxy.add({ match: objectRequest('GET', 'f/slow'), fault: { kind: 'delay', ms: 3000 }, times: 1 });
    expect((await b.get('f/slow')).equals(data)).toBe(true);
    expect(count('GET', 'f/slow')).toBe(2);
    await b.close();
  });

  it('retries after a connection reset and after a body cut mid-transfer', async () => {
    const b = await kind.viaProxy('retries=3');
    const data = randomBytes(2 * MiB);
    await b.put('f/cut', data);
    proxy.add({ match: objectRequest('GET', 'f/cut'), fault: { kind: 'reset' }, times: 1 });
    expect((await b.get('f/cut')).equals(data)).toBe(true);
    proxy.add({ match: objectRequest('GET', 'f/cut'), fault: { kind: 'cut-response', afterBytes: 300_000 }, times: 1 });
    expect((await b.get('f/cut')).equals(data)).toBe(true);
    expect(count('GET', 'f/cut')).toBe(4);
    await b.close();
  });

  it.each([
    ['a single PUT', false],
    ['a multipart/segmented upload', true],
  ])('server stops in the middle of %s: UNAVAILABLE, nothing visible', async (_label, large) => {
    const b = await kind.viaProxy('retries=2&timeout=2');
    const key = large ? 'stop/large' : 'stop/small';
    // Below the 1 MiB Swift segment size and the 5 MiB S3 part threshold: one plain PUT.
    const data = randomBytes(large ? kind.largeSize : 900 * 1024);
    proxy.add({
      match: large ? kind.isPartUpload : objectRequest('PUT', key),
      fault: { kind: 'cut-request', afterBytes: 256 * 1024, thenDown: true },
      times: 1,
    });
    const e = await expectCode(b.put(key, data), 'UNAVAILABLE');
    expect(e.message).toContain(b.location);
    expect(e.message).not.toContain(kind.secret());
    await b.close();
    proxy.up();
    const truth = await kind.direct();
    expect(await truth.stat(key)).toBeNull();
    expect(await collect(truth.list('stop/'))).toEqual([]);
    expect((await rawListing(lab, kind.container)).filter((n) => n.startsWith('r/stop/'))).toEqual([]);
    await truth.close();
  });

  it('a large upload that fails while the server is up leaves no parts behind', async () => {
    const b = await kind.viaProxy('retries=1');
    let parts = 0;
    // The first two parts go through; every later part upload fails.
    proxy.add({ match: (req) => kind.isPartUpload(req) && ++parts > 2, fault: { kind: 'status', status: 500 } });
    await expectCode(b.put('fail/large', randomBytes(kind.largeSize)), 'UNAVAILABLE');
    expect(parts).toBeGreaterThan(2);
    expect(await b.stat('fail/large')).toBeNull();
    expect((await rawListing(lab, kind.segmentContainer)).filter((n) => n.startsWith('r/fail/large'))).toEqual([]);
    await b.close();
  });

  it('a lost answer to the final step of a large upload: the object landed whole, put succeeds', async () => {
    // No retries: the client must find out by looking, not by repeating the request.
    const b = await kind.viaProxy('retries=0');
    const data = randomBytes(kind.largeSize);
    proxy.add({ match: kind.isFinalStep, fault: { kind: 'lose-response' }, times: 1 });
    await b.put('lost/large', data);
    expect(proxy.seen.filter((s) => s.fault === 'lose-response').length).toBe(1);
    expect((await b.get('lost/large')).equals(data)).toBe(true);
    await b.close();
  });

  it('keeps at most `threads` requests in flight', async () => {
    const b = await kind.viaProxy('threads=2');
    proxy.clear();
    const blobs = Array.from({ length: 10 }, () => randomBytes(256 * 1024));
    await Promise.all(blobs.map((d, i) => b.put(`par/${i}`, d)));
    await Promise.all(blobs.map((_, i) => b.get(`par/${i}`)));
    expect(proxy.maxInFlight).toBe(2);
    await b.close();
  });

  it('gives up after the retries with a clean error naming the destination', async () => {
    const b = await kind.viaProxy('retries=2');
    await b.put('f/down', Buffer.from('x'));
    proxy.add({ match: objectRequest('GET', 'f/down'), fault: { kind: 'status', status: 503 } });
    const e = await expectCode(b.get('f/down'), 'UNAVAILABLE');
    expect(e.message).toContain(b.location);
    expect(e.message).toContain('get f/down');
    expect(e.message).toContain('3 attempt(s)');
    expect(e.message).toContain('503');
    expect(e.message).not.toContain(kind.secret());
    expect(count('GET', 'f/down')).toBe(3);
    await b.close();
  });
});
