// S3 backend against the real Swift lab's s3api middleware.
import { beforeAll, describe, expect, it } from 'vitest';
import { openS3Backend } from '../../src/engine/destinations/s3.ts';
import { openBackend } from '../../src/engine/destinations/index.ts';
import { ensureSwiftLab, rawListing, uniqueName, type SwiftLab } from '../helpers/swift-lab.ts';
import { backendConformance, expectCode } from './conformance.ts';

const MiB = 1024 * 1024;
let lab: SwiftLab;
const bucket = uniqueName('s3');

beforeAll(async () => {
  lab = await ensureSwiftLab();
});

const env = () => ({ AWS_ACCESS_KEY_ID: lab.accessKeyId, AWS_SECRET_ACCESS_KEY: lab.secretAccessKey });
// Small parts so the multipart path runs on an 11 MiB object (S3's minimum part is 5 MiB).
const url = () => new URL(`s3://${bucket}/repo/one?endpoint=${lab.s3Endpoint}&region=${lab.s3Region}&part_size=5M&multipart_threshold=5M`);

backendConformance('s3', () => ({
  open: () => openS3Backend(url(), env()),
  openWithWrongSecret: () => openS3Backend(url(), { ...env(), AWS_SECRET_ACCESS_KEY: 'wrong-secret-4711' }),
  wrongSecret: 'wrong-secret-4711',
  largeSize: 11 * MiB + 12_345,
}));

describe('s3 specifics', () => {
  it('opens through the destination URL dispatcher and keeps objects under the prefix', async () => {
    const b = await openBackend(`s3://${bucket}/repo/two?endpoint=${lab.s3Endpoint}&region=${lab.s3Region}`, env());
    await b.put('config', Buffer.from('{}'));
    expect(b.location).toBe(`s3://${bucket}/repo/two/ at ${lab.s3Endpoint}`);
    await b.close();
    // Seen from Swift, the bucket is a container and the key carries the prefix.
    expect(await rawListing(lab, bucket)).toContain('repo/two/config');
  });

  it('rejects bad settings and missing credentials with INVALID, naming the problem', async () => {
    const e1 = await expectCode(openS3Backend(new URL(`s3://${bucket}/p?endpoint=${lab.s3Endpoint}&part_size=1M`), env()), 'INVALID');
    expect(e1.message).toContain('part_size');
    const e2 = await expectCode(openS3Backend(new URL(`s3://${bucket}/p?endpoint=${lab.s3Endpoint}&thread=4`), env()), 'INVALID');
    expect(e2.message).toContain('unknown setting thread');
    const e3 = await expectCode(openS3Backend(new URL(`s3://${bucket}/p?endpoint=${lab.s3Endpoint}`), {}), 'INVALID');
    expect(e3.message).toContain('AWS_ACCESS_KEY_ID');
    const e4 = await expectCode(openBackend(`s3://AKIA:topsecret@${bucket}/p?endpoint=${lab.s3Endpoint}`, env()), 'INVALID');
    expect(e4.message).not.toContain('topsecret');
  });
});
