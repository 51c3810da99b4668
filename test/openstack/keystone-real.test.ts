// The Keystone client against a real Keystone (Debian's package; test/labs/keystone.sh).
import { beforeAll, describe, expect, it } from 'vitest';
import {
  HttpClient, KeystoneClient, OpenStackCatalogError, OpenStackCloud, OpenStackError, selectEndpoint, TokenSource,
} from '../../src/openstack/index.ts';
import { keystoneLab, type KeystoneLab } from '../helpers/keystone-lab.ts';

let lab: KeystoneLab;
beforeAll(async () => {
  lab = await keystoneLab();
}, 900_000);

const adminCreds = () => ({ username: lab.admin.username, password: lab.admin.password, userDomain: { name: lab.admin.domain } });

describe('Keystone client against a real Keystone', () => {
  it('issues a project-scoped token with a catalog', async () => {
    const ks = new KeystoneClient(lab.url);
    const t = await ks.issueToken(adminCreds(), { project: { name: lab.admin.project, domain: { name: lab.admin.domain } } });
    expect(t.value.length).toBeGreaterThan(100);
    expect(t.project?.name).toBe('admin');
    expect(t.domain).toBeUndefined();
    expect(t.roles.map((r) => r.name)).toContain('admin');
    expect(t.expiresAt.getTime()).toBeGreaterThan(Date.now() + 30 * 60_000);
    expect(t.catalog.map((s) => s.type).sort()).toEqual(['compute', 'identity', 'object-store']);
  });

  it('issues a domain-scoped token in a second domain', async () => {
    const ks = new KeystoneClient(`${lab.url}/`);
    const t = await ks.issueToken({ username: lab.lab2.username, password: lab.lab2.password, userDomain: { name: lab.lab2.domain } }, { domain: { name: 'lab2' } });
    expect(t.domain?.name).toBe('lab2');
    expect(t.project).toBeUndefined();
    expect(t.user).toMatchObject({ name: 'backup-svc', domain: { name: 'lab2' } });
  });

  it('uses each auth domain with its own credentials; domain-scoped identity calls list only that domain', async () => {
    const cloud = new OpenStackCloud({
      keystoneUrl: lab.url, region: lab.region, iface: 'public', domainScoped: true,
      authDomains: [
        { name: 'Default', username: lab.admin.username, password: lab.admin.password, defaultProject: lab.admin.project },
        { name: 'lab2', username: lab.lab2.username, password: lab.lab2.password, defaultProject: lab.lab2.project },
      ],
    });
    const lab2 = await cloud.identitySession('lab2').token();
    expect(lab2.domain?.name).toBe('lab2');
    expect(lab2.user.name).toBe('backup-svc');
    const projects = await cloud.keystone.listProjects(lab2, { iface: 'public', region: lab.region, domainId: lab2.domain!.id });
    expect(projects.map((p) => p.name).sort()).toEqual(['backup-proj-a', 'backup-proj-b']);

    const lab2Project = await cloud.defaultSession('lab2').token();
    expect(lab2Project.project).toMatchObject({ name: 'backup-proj-a', domain: { name: 'lab2' } });
    const admin = await cloud.defaultSession('Default').token();
    expect(admin.user.name).toBe('admin');
    expect(admin.project?.name).toBe('admin');
  });

  it('chooses catalog endpoints by interface and region', async () => {
    const t = await new KeystoneClient(lab.url).issueToken(adminCreds(), { project: { name: 'admin', domain: { name: 'Default' } } });
    expect(selectEndpoint(t.catalog, ['compute'], 'internal', lab.region)).toBe('http://127.0.0.1:18774/internal/v2.1');
    expect(selectEndpoint(t.catalog, ['compute'], 'admin', lab.region)).toBe('http://127.0.0.1:18774/admin/v2.1');
    expect(selectEndpoint(t.catalog, ['compute'], 'public', lab.region2)).toBe('http://127.0.0.2:18774/public/v2.1');
    expect(() => selectEndpoint(t.catalog, ['compute'], 'admin', lab.region2)).toThrow(OpenStackCatalogError);
  });

  it('reuses a token until shortly before expires_at, and shares one request between concurrent callers', async () => {
    let now = Date.now();
    const source = new TokenSource(new KeystoneClient(lab.url), adminCreds(), { project: { name: 'admin', domain: { name: 'Default' } } }, { refreshMarginMs: 60_000, now: () => now });
    const [a, b, c] = await Promise.all([source.get(), source.get(), source.get()]);
    expect(source.issued).toBe(1);
    expect(b).toBe(a);
    expect(c).toBe(a);
    now = a.expiresAt.getTime() - 61_000;
    expect(await source.get()).toBe(a);
    expect(source.issued).toBe(1);
    now = a.expiresAt.getTime() - 59_000; // inside the margin: a fresh token
    const d = await source.get();
    expect(source.issued).toBe(2);
    expect(d.value).not.toBe(a.value);
  });

  it('a wrong password is a typed error with status and request ID, without the password', async () => {
    const ks = new KeystoneClient(lab.url, new HttpClient({ retries: 0 }));
    const err = await ks.issueToken({ ...adminCreds(), password: 'not-the-password-xyz' }, { project: { name: 'admin', domain: { name: 'Default' } } }).catch((e) => e);
    expect(err).toBeInstanceOf(OpenStackError);
    expect(err).toMatchObject({ service: 'identity', status: 401, method: 'POST' });
    expect(err.requestId).toMatch(/^req-[0-9a-f-]{36}$/);
    expect(err.message).toContain('401');
    expect(err.message).toContain(err.requestId);
    expect(err.message).not.toContain('not-the-password-xyz');
  });
});
