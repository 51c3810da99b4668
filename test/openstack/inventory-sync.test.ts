// Inventory sync against the simulator, into a real PostgreSQL.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cloud, CloudAuthDomain, Instance, Project, Volume } from '../../src/db/entities/index.ts';
import { systemFork, type Orm } from '../../src/db/orm.ts';
import { SecretBox } from '../../src/db/secrets.ts';
import { syncInventory, type SyncProgress } from '../../src/engine/inventory/sync.ts';
import { inventorySyncExecutor } from '../../src/engine/inventory/executor.ts';
import { openTestOrm } from '../helpers/database.ts';
import { connect, startSimulator, type TestSim } from '../helpers/simulator.ts';

let t: TestSim;
let orm: Orm;
let closeDb: (() => Promise<void>) | undefined;
const secrets = new SecretBox(randomBytes(32));

beforeAll(async () => {
  t = await startSimulator();
  ({ orm, close: closeDb } = await openTestOrm());
});
afterAll(async () => {
  await closeDb?.();
  await t?.close();
});

async function addCloud(name: string, o: { domainScoped?: boolean; domains: ('Default' | 'lab2')[] }): Promise<string> {
  const em = systemFork(orm);
  const cloud = em.create(Cloud, { name, keystoneUrl: t.sim.keystoneUrl, region: 'RegionOne', endpointInterface: 'INTERNAL', domainScoped: o.domainScoped ?? false });
  for (const d of o.domains) {
    const c = d === 'Default' ? t.seed.admin : t.seed.lab2;
    em.create(CloudAuthDomain, { cloud, name: d, username: c.username, password: secrets.seal(c.password), defaultProject: c.project });
  }
  await em.flush();
  return cloud.id;
}

const deps = () => ({ orm, secrets, http: { retries: 1, backoffMs: 10 } });
const maxUpdatedAt = async (cloudId: string) => {
  const rows = await systemFork(orm).execute<{ m: Date }[]>(
    `select max(m) as m from (select max(updated_at) m from instance where cloud_id = ? union all select max(updated_at) from volume where cloud_id = ?
     union all select max(updated_at) from project where cloud_id = ? union all select max(updated_at) from hypervisor where cloud_id = ?) x`,
    [cloudId, cloudId, cloudId, cloudId]);
  return rows[0]!.m;
};

describe('inventory sync (simulator → PostgreSQL)', () => {
  let cloudId: string;

  it('domain-scoped authorization: a cloud with only the lab2 domain syncs only lab2 projects, project by project', async () => {
    const id = await addCloud('lab2-only', { domainScoped: true, domains: ['lab2'] });
    const r = await syncInventory(deps(), id);
    expect(r).toMatchObject({ projects: 2, instances: 2, volumes: 2 });
    const em = systemFork(orm);
    const names = (await em.find(Instance, { cloud: id }, { populate: ['project'] })).map((i) => `${i.project.name}/${i.name}`).sort();
    expect(names).toEqual(['backup-proj-a/app-a1', 'backup-proj-b/app-b1']);
    // The lab2 credentials were used for lab2 projects only, through project-scoped tokens.
    expect(t.sim.requests.some((r) => r.path.includes('all_tenants'))).toBe(false);
  });

  it('first run creates every row, linked to the right tenant, zone, host, flavor, image and type', async () => {
    cloudId = await addCloud('sim', { domains: ['Default', 'lab2'] });
    const steps: SyncProgress[] = [];
    const r = await syncInventory(deps(), cloudId, { onProgress: (p) => { steps.push(p); } });
    expect(r).toMatchObject({ projects: 5, zones: 2, hypervisors: 2, flavors: 2, networks: 3, images: 1, volumeTypes: 2, instances: 5, volumes: 5, skipped: 0, instancesGone: 0 });
    expect(steps.map((s) => s.step)).toEqual(['projects', 'reference', 'servers', 'volumes', 'write', 'write']);
    expect(steps.at(-1)).toMatchObject({ done: 5, total: 5 });

    const em = systemFork(orm);
    const web = await em.findOneOrFail(Instance, { cloud: cloudId, name: 'web-1' }, { populate: ['project', 'zone', 'hypervisor', 'flavor', 'image', 'volumes', 'volumes.volumeType'] });
    expect(web.externalId).toBe(t.seed.servers['web-1']);
    expect(web.project.externalId).toBe(t.seed.projects.demo);
    expect(web.zone?.name).toBe('nova');
    expect(web.hypervisor?.hostname).toBe('sim-compute-1');
    expect(web.flavor?.name).toBe('m1.tiny');
    expect(web.image).toBeNull();
    expect(web.present).toBe(true);
    const vols = web.volumes.getItems().sort((a, b) => a.name.localeCompare(b.name));
    expect(vols.map((v) => [v.name, v.bootIndex, v.device, v.volumeType?.name, v.sizeBytes])).toEqual([
      ['web-1-data', null, '/dev/vdc', 'nfs', 1024n ** 3n],
      ['web-1-root', 0, '/dev/vda', 'nfs', 1024n ** 3n],
    ]);
    const db = await em.findOneOrFail(Instance, { cloud: cloudId, name: 'db-1' }, { populate: ['image', 'zone', 'flavor', 'hypervisor'] });
    expect([db.image?.name, db.zone?.name, db.flavor?.name, db.hypervisor?.hostname]).toEqual(['sim-tiny-raw', 'az2', 'm1.small', 'sim-compute-2']);
    expect((db.metadata as { addresses: Record<string, unknown> }).addresses['demo-net']).toHaveLength(1);
    const lab2 = await em.find(Project, { cloud: cloudId, domainId: t.seed.lab2.domainId });
    expect(lab2.map((p) => p.name).sort()).toEqual(['backup-proj-a', 'backup-proj-b']);
  });

  it('a second run changes nothing', async () => {
    const before = await maxUpdatedAt(cloudId);
    const r = await syncInventory(deps(), cloudId);
    expect(r.changed).toBe(0);
    expect(await maxUpdatedAt(cloudId)).toEqual(before);
    expect(await systemFork(orm).count(Instance, { cloud: cloudId })).toBe(5);
  });

  it('a tenant sees only its own instances after sync', async () => {
    const em = orm.em.fork();
    const demo = await systemFork(orm).findOneOrFail(Project, { cloud: cloudId, externalId: t.seed.projects.demo });
    em.setFilterParams('tenant', { projectIds: [demo.id] });
    expect((await em.find(Instance, {})).map((i) => i.name).sort()).toEqual(['db-1', 'web-1']);
    expect((await em.find(Volume, {})).map((v) => v.name).sort()).toEqual(['db-1-data', 'web-1-data', 'web-1-root']);
  });

  it('a server deleted in the cloud keeps its row with present: false', async () => {
    const cloud = connect(t);
    const { nova } = cloud.clients(cloud.projectSession('lab2', t.seed.projects['backup-proj-b']!));
    await nova.deleteServer(t.seed.servers['app-b1']!);
    await nova.waitForServerGone(t.seed.servers['app-b1']!, { intervalMs: 20, timeoutMs: 5000 });

    const r = await syncInventory(deps(), cloudId);
    expect(r).toMatchObject({ instances: 4, instancesGone: 1, volumesGone: 0 });
    const em = systemFork(orm);
    const gone = await em.findOneOrFail(Instance, { cloud: cloudId, externalId: t.seed.servers['app-b1'] }, { populate: ['project'] });
    expect(gone.present).toBe(false);
    expect(gone.project.name).toBe('backup-proj-b');
    const vol = await em.findOneOrFail(Volume, { cloud: cloudId, name: 'app-b1-data' });
    expect(vol.present).toBe(true); // the volume outlives the server, now detached
    expect(vol.instance).toBeNull();
    expect(await em.count(Instance, { cloud: cloudId, present: true })).toBe(4);
    expect((await syncInventory(deps(), cloudId)).changed).toBe(0);
  });

  it('servers of projects outside the auth domains are skipped, not mis-assigned', async () => {
    const id = await addCloud('default-only', { domains: ['Default'] });
    t.sim.state.servers.get(t.seed.proxyServerId)!.name = "proxy? it's \"quoted\" $1 ::jsonb"; // data is never SQL
    const r = await syncInventory(deps(), id);
    expect((await systemFork(orm).findOneOrFail(Instance, { cloud: id, externalId: t.seed.proxyServerId })).name).toBe("proxy? it's \"quoted\" $1 ::jsonb");
    expect(r.projects).toBe(3);
    expect(r.instances).toBe(3); // proxy, web-1, db-1
    expect(r.skipped).toBe(3); // in lab2: app-a1, its volume, and app-b1's volume (its server was deleted above)
  });

  it('as a task executor: steps become phases and progress; cancellation aborts before writing', async () => {
    const phases: string[] = [];
    const progress: bigint[] = [];
    const ctx = (signal: AbortSignal) => ({
      task: { cloud: { id: cloudId } }, signal,
      phase: async (name: string) => { phases.push(name); },
      progress: (p: { bytesDone: bigint; bytesTotal: bigint }) => { progress.push(p.bytesDone); },
    });
    await inventorySyncExecutor(deps())(ctx(new AbortController().signal));
    expect(phases).toEqual(['projects', 'reference', 'servers', 'volumes', 'write']);
    expect(progress.at(-1)).toBe(5n);

    const abort = new AbortController();
    const before = await maxUpdatedAt(cloudId);
    const c = ctx(abort.signal);
    const run = inventorySyncExecutor(deps())({ ...c, phase: async (name) => { if (name === 'servers') abort.abort(new Error('cancelled')); await c.phase(name); } });
    await expect(run).rejects.toThrow('cancelled');
    expect(await maxUpdatedAt(cloudId)).toEqual(before);
  });
});
