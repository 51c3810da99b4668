// The OpenStack clients against the simulator: auth and auth domains, endpoint choice,
// paging, microversions, errors with request IDs, retries and timeouts.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  HttpClient, KeystoneClient, OpenStackCloud, OpenStackError, OpenStackUnavailableError,
} from '../../src/openstack/index.ts';
import { connect, startSimulator, type TestSim } from '../helpers/simulator.ts';

let t: TestSim;
beforeAll(async () => {
  t = await startSimulator();
});
afterAll(async () => t?.close());
beforeEach(() => {
  t.sim.faults.clear();
  t.sim.requests.length = 0;
});

describe('Keystone v3 auth (simulator)', () => {
  it('issues project- and domain-scoped tokens; a domain token lists no project-bound endpoints', async () => {
    const ks = new KeystoneClient(t.sim.keystoneUrl);
    const creds = { username: 'backup-svc', password: t.seed.lab2.password, userDomain: { name: 'lab2' } };
    const p = await ks.issueToken(creds, { project: { name: 'backup-proj-b', domain: { name: 'lab2' } } });
    expect(p.project).toMatchObject({ id: t.seed.projects['backup-proj-b'], domain: { name: 'lab2' } });
    expect(p.catalog.map((s) => s.type)).toContain('volumev3');
    const d = await ks.issueToken(creds, { domain: { name: 'lab2' } });
    expect(d.domain).toEqual({ id: t.seed.lab2.domainId, name: 'lab2' });
    expect(d.catalog.map((s) => s.type)).not.toContain('volumev3');
  });

  it('lists domains and projects with an admin token', async () => {
    const cloud = connect(t);
    const token = await cloud.defaultSession().token();
    const domains = await cloud.keystone.listDomains(token, { iface: 'public', region: 'RegionOne' });
    expect(domains.map((d) => d.name).sort()).toEqual(['Default', 'lab2']);
    const all = await cloud.keystone.listProjects(token, { iface: 'public', region: 'RegionOne' });
    expect(all).toHaveLength(5);
    expect(all.find((p) => p.name === 'backup-proj-a')?.domain_id).toBe(t.seed.lab2.domainId);
  });

  it('several auth domains with domain-scoped authorization: each credential set only in its domain', async () => {
    const cloud = connect(t, { domainScoped: true });
    const lab2Token = await cloud.identitySession('lab2').token();
    expect(lab2Token.domain?.name).toBe('lab2');
    const projects = await cloud.keystone.listProjects(lab2Token, { iface: 'public', region: 'RegionOne', domainId: lab2Token.domain!.id });
    expect(projects.map((p) => p.name).sort()).toEqual(['backup-proj-a', 'backup-proj-b']);

    const inA = cloud.clients(cloud.projectSession('lab2', t.seed.projects['backup-proj-a']!));
    expect((await inA.nova.listServers()).map((s) => s.name)).toEqual(['app-a1']);

    // lab2's credentials have no role in the Default domain's projects.
    const err = await cloud.projectSession('lab2', t.seed.projects.demo!).token().catch((e) => e);
    expect(err).toBeInstanceOf(OpenStackError);
    expect(err.status).toBe(401);
  });

  it('chooses the endpoint by interface and region', async () => {
    for (const [iface, region] of [['internal', 'RegionOne'], ['admin', 'RegionTwo'], ['public', 'RegionTwo']] as const) {
      const cloud = connect(t, { iface, region });
      t.sim.requests.length = 0;
      await cloud.clients(cloud.defaultSession()).nova.listFlavors();
      await cloud.clients(cloud.defaultSession()).cinder.listVolumeTypes();
      const calls = t.sim.requests.filter((r) => r.service !== 'identity');
      expect(calls).toHaveLength(2);
      for (const c of calls) expect(c).toMatchObject({ iface, region });
    }
  });
});

describe('Nova, Cinder, Glance, Neutron (simulator)', () => {
  const admin = () => {
    const cloud = connect(t);
    return cloud.clients(cloud.defaultSession());
  };

  it('lists servers of all tenants page by page with microversion 2.89', async () => {
    const { nova } = admin();
    const all = await nova.listServers({ allTenants: true, pageSize: 2 });
    expect(all.map((s) => s.name).sort()).toEqual(['app-a1', 'app-b1', 'db-1', 'sb-backup-proxy', 'web-1']);
    expect(new Set(all.map((s) => s.id)).size).toBe(5);
    const pages = t.sim.requests.filter((r) => r.path.startsWith('/RegionOne/public/compute/v2.1/servers/detail'));
    expect(pages).toHaveLength(3);
    expect(pages[1]!.path).toContain(`marker=${all[1]!.id}`);
    for (const p of pages) expect(p.headers['openstack-api-version']).toBe('compute 2.89');
    const web = all.find((s) => s.name === 'web-1')!;
    expect(web.flavor.original_name).toBe('m1.tiny');
    expect(web.tenant_id).toBe(t.seed.projects.demo);
    expect(web['os-extended-volumes:volumes_attached']).toHaveLength(2);
    expect(web.image).toBe('');
  });

  it('without all_tenants a token sees its own project only', async () => {
    const cloud = connect(t);
    const { nova } = cloud.clients(cloud.defaultSession());
    expect((await nova.listServers()).map((s) => s.name)).toEqual(['sb-backup-proxy']);
  });

  it('reads flavors, zones, hypervisors, volume types with extra specs, volumes (3.70), images, networks, ports', async () => {
    const { nova, cinder, glance, neutron } = admin();
    expect((await nova.listFlavors()).map((f) => f.name)).toEqual(['m1.tiny', 'm1.small']);
    expect((await nova.listAvailabilityZones()).map((z) => z.zoneName)).toEqual(['internal', 'nova', 'az2']);
    expect((await nova.listHypervisors()).map((h) => [h.hypervisor_hostname, h.service.host])).toEqual([['sim-compute-1', 'sim-compute-1'], ['sim-compute-2', 'sim-compute-2']]);
    const types = await cinder.listVolumeTypes();
    const nfs = types.find((x) => x.name === 'nfs')!;
    expect(nfs.extra_specs).toEqual({ volume_backend_name: 'nfs1' });
    expect(await cinder.getExtraSpecs(nfs.id)).toEqual({ volume_backend_name: 'nfs1' });
    const vols = await cinder.listVolumes({ allTenants: true, pageSize: 3 });
    expect(vols).toHaveLength(5);
    expect(vols.every((v) => v.volume_type_id === nfs.id)).toBe(true);
    expect(t.sim.requests.filter((r) => r.path.includes('/volumes/detail')).every((r) => r.headers['openstack-api-version'] === 'volume 3.70')).toBe(true);
    expect((await glance.listImages()).map((i) => i.name)).toEqual(['sim-tiny-raw']);
    expect((await neutron.listNetworks()).map((n) => n.name).sort()).toEqual(['demo-net', 'lab2-net', 'shared-net']);
    const ports = await neutron.listPorts({ deviceId: t.seed.servers['web-1'] });
    expect(ports).toHaveLength(1);
  });

  it('Glance: create, upload a stream, list with paging, download the same bytes, delete', async () => {
    const { glance } = admin();
    const data = Buffer.alloc(300_000, 7);
    data.write('strongbox', 1000);
    const img = await glance.createImage({ name: 'up-test', disk_format: 'raw', container_format: 'bare' });
    expect(img.status).toBe('queued');
    const { Readable } = await import('node:stream');
    await glance.upload(img.id, Readable.from([data.subarray(0, 100_000), data.subarray(100_000)]));
    expect((await glance.getImage(img.id)).status).toBe('active');
    expect((await glance.listImages({ pageSize: 1 })).map((i) => i.name).sort()).toEqual(['sim-tiny-raw', 'up-test']);
    const dl = await glance.download(img.id);
    const chunks: Buffer[] = [];
    for await (const c of dl.stream) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).equals(data)).toBe(true);
    expect(dl.size).toBe(data.length);
    await glance.deleteImage(img.id);
    expect((await glance.getImage(img.id).catch((e) => e)).status).toBe(404);
  });

  it('surfaces OpenStack errors with service, status, request ID and the server message', async () => {
    const { nova, cinder } = admin();
    const err = await nova.getServer('00000000-0000-0000-0000-000000000000').catch((e) => e);
    expect(err).toBeInstanceOf(OpenStackError);
    expect(err).toMatchObject({ service: 'compute', status: 404, serverMessage: 'Instance 00000000-0000-0000-0000-000000000000 could not be found.' });
    expect(err.requestId).toMatch(/^req-/);
    expect(err.message).toContain(err.requestId);
    const e2 = await cinder.createSnapshot({ volume_id: t.seed.volumes['db-1-data']!, force: false }).catch((e) => e); // in use; 3.66+ refuses force=false
    expect(e2).toMatchObject({ service: 'volumev3', status: 400 });
    expect(e2.serverMessage).toContain('force flag is invalid');
    const e3 = await cinder.getVolume('00000000-0000-0000-0000-00000000000f').catch((e) => e);
    expect(e3).toMatchObject({ service: 'volumev3', status: 404, serverMessage: 'Volume 00000000-0000-0000-0000-00000000000f could not be found.' });
    // Before 3.66 an in-use volume needs force (raw call at 3.27).
    const e4 = await connect(t).defaultSession().request('volumev3', 'POST', '/snapshots', {
      headers: { 'OpenStack-API-Version': 'volume 3.27' }, json: { snapshot: { volume_id: t.seed.volumes['db-1-data'] } },
    }).catch((e) => e);
    expect(e4).toMatchObject({ status: 400 });
    expect(e4.serverMessage).toContain('current status is: in-use');
  });

  it('retries idempotent calls on injected 5xx, never a POST', async () => {
    const { nova, cinder } = admin();
    t.sim.addFault({ method: 'GET', path: '/compute/v2.1/flavors/detail$', status: 503, times: 2 });
    expect(await nova.listFlavors()).toHaveLength(2);
    expect(t.sim.requests.filter((r) => r.path.includes('/flavors/detail'))).toHaveLength(3);

    t.sim.addFault({ method: 'POST', path: '/volume/v3/[^/]+/volumes$', status: 503, times: 1 });
    const before = t.sim.counts().volumes;
    const err = await cinder.createVolume({ size: 1, name: 'x' }).catch((e) => e);
    expect(err).toMatchObject({ status: 503 });
    expect(t.sim.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/volumes'))).toHaveLength(1);
    expect(t.sim.counts().volumes).toBe(before);

    t.sim.addFault({ method: 'GET', path: '/flavors/detail$', status: 500, times: 10 });
    const gaveUp = await nova.listFlavors().catch((e) => e);
    expect(gaveUp).toMatchObject({ status: 500 });
    expect(t.sim.requests.filter((r) => r.path.includes('/flavors/detail'))).toHaveLength(3 + 3); // 1 + 2 retries
  });

  it('times out a hanging call, retrying when idempotent', async () => {
    const quick = (retries: number) => {
      const cloud = new OpenStackCloud({ ...connect(t).opts, http: { timeoutMs: 300, retries, backoffMs: 10 } });
      return cloud.clients(cloud.defaultSession());
    };
    t.sim.addFault({ method: 'GET', path: '/os-hypervisors/detail$', hang: true, times: 1 });
    expect(await quick(1).nova.listHypervisors()).toHaveLength(2);

    t.sim.addFault({ method: 'GET', path: '/os-hypervisors/detail$', hang: true, times: 1 });
    const err = await quick(0).nova.listHypervisors().catch((e) => e);
    expect(err).toBeInstanceOf(OpenStackUnavailableError);
    expect(err).toMatchObject({ service: 'compute', reason: 'timeout' });
  });

  it('an expired or revoked token is replaced once, transparently', async () => {
    const cloud = connect(t);
    const session = cloud.defaultSession();
    const { nova } = cloud.clients(session);
    const first = await session.token();
    t.sim.state.tokens.delete(first.value); // revoked server-side
    expect(await nova.listFlavors()).toHaveLength(2);
    expect((await session.token()).value).not.toBe(first.value);
  });

  it('never puts a password or token in an error', async () => {
    const cloud = new OpenStackCloud({ ...connect(t).opts, http: { retries: 0 } });
    const session = cloud.defaultSession();
    const token = await session.token();
    t.sim.addFault({ path: '/servers/detail', status: 500, times: 1 });
    const err = await cloud.clients(session).nova.listServers().catch((e) => e);
    const text = `${err.message} ${JSON.stringify(err)} ${err.stack}`;
    expect(text).not.toContain(token.value);
    expect(text).not.toContain(t.seed.admin.password);
    const bad = await new KeystoneClient(t.sim.keystoneUrl, new HttpClient({ retries: 0 }))
      .issueToken({ username: 'admin', password: 'wrong-pass-123', userDomain: { name: 'Default' } }, { domain: { name: 'Default' } }).catch((e) => e);
    expect(bad).toMatchObject({ status: 401 });
    expect(`${bad.message} ${JSON.stringify(bad)}`).not.toContain('wrong-pass-123');
  });

  it('creates a server booted from a volume on a new port, then deletes it (restore path)', async () => {
    const { nova, cinder, neutron } = admin();
    const before = t.sim.counts();
    const flavor = (await nova.listFlavors()).find((f) => f.name === 'm1.tiny')!;
    const net = (await neutron.listNetworks()).find((n) => n.name === 'shared-net')!;
    const root = await cinder.createVolume({ size: 1, name: 'restored-root', availability_zone: 'az2', volume_type: 'nfs' });
    await cinder.waitForVolume(root.id, ['available'], { intervalMs: 20 });
    const port = await neutron.createPort({ network_id: net.id, name: 'restored-port' });
    const created = await nova.createServer({
      name: 'restored-1', flavorRef: flavor.id, availability_zone: 'az2', networks: [{ port: port.id }],
      block_device_mapping_v2: [{ boot_index: 0, uuid: root.id, source_type: 'volume', destination_type: 'volume', delete_on_termination: false }],
    });
    const server = await nova.waitForServer(created.id, ['ACTIVE'], { intervalMs: 20, timeoutMs: 5000 });
    expect(server).toMatchObject({ name: 'restored-1', 'OS-EXT-AZ:availability_zone': 'az2', image: '' });
    expect(server.addresses['shared-net']).toHaveLength(1);
    const vol = await cinder.waitForVolume(root.id, ['in-use'], { intervalMs: 20 });
    expect(vol.attachments[0]).toMatchObject({ server_id: created.id, device: '/dev/vda' });
    expect(vol.bootable).toBe('true');
    expect((await neutron.listPorts({ deviceId: created.id })).map((p) => p.id)).toEqual([port.id]);

    await nova.deleteServer(created.id);
    await nova.waitForServerGone(created.id, { intervalMs: 20, timeoutMs: 5000 });
    await cinder.waitForVolume(root.id, ['available'], { intervalMs: 20 });
    await cinder.deleteVolume(root.id);
    await cinder.waitForVolumeGone(root.id, { intervalMs: 20 });
    expect((await neutron.listPorts({ networkId: net.id })).find((p) => p.id === port.id)?.device_id).toBe('');
    await neutron.deletePort(port.id);
    expect(t.sim.counts()).toEqual(before);
  });

  it('a wait ends at once when its signal is aborted', async () => {
    const { cinder } = admin();
    const abort = new AbortController();
    const waiting = cinder.waitForVolume(t.seed.volumes['web-1-data']!, ['available'], { intervalMs: 50, timeoutMs: 60_000, signal: abort.signal });
    setTimeout(() => abort.abort(new Error('stop waiting')), 100);
    await expect(waiting).rejects.toThrow('stop waiting');
  });

  it('the simulator refuses a microversion newer than Zed, like Nova does', async () => {
    const cloud = connect(t);
    const err = await cloud.defaultSession().request('compute', 'GET', '/servers/detail', { headers: { 'OpenStack-API-Version': 'compute 2.99' } }).catch((e) => e);
    expect(err).toMatchObject({ status: 406, service: 'compute' });
  });

  it('faults can be injected over the admin endpoint', async () => {
    const post = (path: string, body: unknown) => fetch(`${t.sim.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect((await post('/__sim/faults', { method: 'GET', path: '/os-availability-zone/detail$', status: 502, times: 1 })).status).toBe(201);
    const cloud = new OpenStackCloud({ ...connect(t).opts, http: { retries: 0 } });
    const err = await cloud.clients(cloud.defaultSession()).nova.listAvailabilityZones().catch((e) => e);
    expect(err).toMatchObject({ status: 502 });
    expect((await (await fetch(`${t.sim.url}/__sim/counts`)).json()).servers).toBe(t.sim.counts().servers);
    expect((await post('/__sim/attach-never-completes', { enabled: true })).status).toBe(200);
    expect(t.sim.faults.neverCompleteAttach).toBe(true);
    expect((await fetch(`${t.sim.url}/__sim/faults`, { method: 'DELETE' })).status).toBe(204);
    expect(t.sim.faults.neverCompleteAttach).toBe(false);
  });
});
