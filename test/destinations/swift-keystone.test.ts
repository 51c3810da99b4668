// Swift backend with Keystone v3 auth. No real Keystone runs here yet: a tiny in-test server
// answers POST /v3/auth/tokens in the real token shape and hands out the real Swift lab's
// storage URL and a real tempauth token, so every byte still goes to the real Swift.
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSwiftBackend } from '../../src/engine/destinations/swift.ts';
import { FakeKeystone } from '../helpers/fake-keystone.ts';
import { ensureSwiftLab, labToken, uniqueName, type SwiftLab } from '../helpers/swift-lab.ts';
import { backendConformance, expectCode } from './conformance.ts';

const MiB = 1024 * 1024;
const user = { username: 'strongbox', password: 'keystone-pass-9731', userDomain: 'Default', project: 'backups', projectDomain: 'Default' };
const osEnv = {
  OS_USERNAME: user.username,
  OS_PASSWORD: user.password,
  OS_PROJECT_NAME: user.project,
  OS_USER_DOMAIN_NAME: user.userDomain,
  OS_PROJECT_DOMAIN_NAME: user.projectDomain,
};
let lab: SwiftLab;
let keystone: FakeKeystone;
const container = uniqueName('swift-v3');

beforeAll(async () => {
  lab = await ensureSwiftLab();
  keystone = await FakeKeystone.start({ user, storageUrl: () => lab.storageUrl, swiftToken: () => labToken(lab) });
});
afterAll(async () => {
  await keystone?.close();
});

const url = (extra = '&region=RegionOne&service_name=swift') => new URL(`swift://${container}/repo?auth=${keystone.authUrl}&segment_size=1M${extra}`);

backendConformance('swift (Keystone v3)', () => ({
  open: () => openSwiftBackend(url(), osEnv),
  openWithWrongSecret: () => openSwiftBackend(url(), { ...osEnv, OS_PASSWORD: 'not-the-pass-1234' }),
  wrongSecret: 'not-the-pass-1234',
  largeSize: 2 * MiB + 1,
}));

describe('swift Keystone v3 auth', () => {
  it('takes the object-store endpoint of the asked interface, region and service', async () => {
    const internal = await openSwiftBackend(url('&region=RegionOne&service_name=swift&interface=internal'), osEnv);
    await internal.put('iface', Buffer.from('internal'));
    expect((await internal.get('iface')).toString()).toBe('internal');
    await internal.close();
    // The catalog's admin endpoint, the RegionTwo endpoint and the other service point at a closed port.
    for (const extra of ['&region=RegionOne&service_name=swift&interface=admin', '&region=RegionTwo&service_name=swift', '&region=RegionOne&service_name=swift-archive']) {
      const e = await expectCode(openSwiftBackend(url(`${extra}&retries=0`), osEnv), 'UNAVAILABLE');
      expect(e.message).toContain('ECONNREFUSED');
    }
  });

  it('asks for region= or service_name= when the catalog is ambiguous, and names a missing endpoint', async () => {
    expect((await expectCode(openSwiftBackend(url('&service_name=swift'), osEnv), 'INVALID')).message).toContain('several regions');
    expect((await expectCode(openSwiftBackend(url('&region=RegionOne'), osEnv), 'INVALID')).message).toContain('several object-store services');
    expect((await expectCode(openSwiftBackend(url('&region=Mars&service_name=swift'), osEnv), 'INVALID')).message).toContain('region Mars');
  });

  it('authenticates again when Swift answers 401 (revoked token)', async () => {
    const before = keystone.issued;
    keystone.nextToken = 'AUTH_tk0000000000000000000000000000000';
    const b = await openSwiftBackend(url(), osEnv);
    await b.put('after-401', Buffer.from('ok'));
    expect((await b.get('after-401')).toString()).toBe('ok');
    expect(keystone.issued - before).toBe(2);
    await b.close();
  });

  it('renews the token before it expires', async () => {
    const short = await FakeKeystone.start({ user, storageUrl: () => lab.storageUrl, swiftToken: () => labToken(lab), ttlMs: 61_000 });
    try {
      // Renewal starts 60 s before expiry, so this token is good for about one second.
      const b = await openSwiftBackend(new URL(`swift://${container}/repo?auth=${short.authUrl}&region=RegionOne&service_name=swift`), osEnv);
      await b.put('renew', Buffer.from('1'));
      expect(short.issued).toBe(1);
      await sleep(1200);
      await b.put('renew', Buffer.from('2'));
      expect(short.issued).toBe(2);
      expect((await b.get('renew')).toString()).toBe('2');
      await b.close();
    } finally {
      await short.close();
    }
  });

  it('requires the OS_* variables, naming them', async () => {
    const e = await expectCode(openSwiftBackend(url(), { OS_USERNAME: 'x' }), 'INVALID');
    expect(e.message).toContain('OS_PASSWORD');
  });
});
