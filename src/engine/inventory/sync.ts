// Inventory sync: copy a cloud's projects (per auth domain), zones, hypervisors, flavors,
// networks, images, volume types, servers and volumes into the catalog. Upserts are bulk and
// change only what changed; instances and volumes gone from the cloud keep their rows with
// `present: false` (their backups stay visible to the tenant). The task engine calls
// `syncInventory` for an `inventorySync` task.
import { Cloud } from '../../db/entities/cloud.ts';
import { systemFork, type Orm } from '../../db/orm.ts';
import type { SecretBox } from '../../db/secrets.ts';
import type { CinderVolume, HttpOptions, NovaServer, OpenStackCloud } from '../../openstack/index.ts';
import { connectCloud } from '../openstack-connection.ts';
import { idMap, markGone, upsertRows } from './upsert.ts';

export type SyncProgress = { step: SyncStep; done: number; total: number };
export const syncSteps = ['projects', 'reference', 'servers', 'volumes', 'write'] as const;
export type SyncStep = (typeof syncSteps)[number];

export type SyncResult = {
  projects: number;
  zones: number;
  hypervisors: number;
  flavors: number;
  networks: number;
  images: number;
  volumeTypes: number;
  instances: number;
  volumes: number;
  /** Rows inserted or changed by this run (0 when nothing changed in the cloud). */
  changed: number;
  instancesGone: number;
  volumesGone: number;
  /** Servers/volumes in projects outside every auth domain (not synced). */
  skipped: number;
};

export type SyncDeps = { orm: Orm; secrets: SecretBox; http?: HttpOptions };
export type SyncOptions = { onProgress?: (p: SyncProgress) => void | Promise<void>; signal?: AbortSignal; concurrency?: number };

type ProjectInfo = { externalId: string; name: string; domainId: string; enabled: boolean; authDomain: string };

export async function syncInventory(deps: SyncDeps, cloudId: string, opts: SyncOptions = {}): Promise<SyncResult> {
  const em = systemFork(deps.orm);
  const cloud = await em.findOneOrFail(Cloud, cloudId, { populate: ['authDomains'] });
  const os = connectCloud(cloud, deps.secrets, deps.http);
  const signal = opts.signal;
  const progress = async (step: SyncStep) => {
    signal?.throwIfAborted();
    await opts.onProgress?.({ step, done: syncSteps.indexOf(step), total: syncSteps.length });
  };

  // 1. Projects, per auth domain, with that domain's credentials.
  await progress('projects');
  const projects = await fetchProjects(os, signal);

  // 2. Reference data, through the first auth domain's project session.
  await progress('reference');
  const primary = os.clients(os.defaultSession());
  const [zones, hypervisors, flavors, networks, images, volumeTypes] = await Promise.all([
    primary.nova.listAvailabilityZones(signal),
    primary.nova.listHypervisors(signal),
    primary.nova.listFlavors(signal),
    primary.neutron.listNetworks(signal),
    primary.glance.listImages({ signal }),
    primary.cinder.listVolumeTypes(signal),
  ]);

  // 3–4. Servers and volumes: all tenants at once, or project by project with each domain's
  // own credentials when domain-scoped authorization is on.
  await progress('servers');
  const known = new Map(projects.map((p) => [p.externalId, p]));
  let servers: NovaServer[];
  let volumes: CinderVolume[];
  if (!os.opts.domainScoped) {
    [servers, volumes] = await Promise.all([
      primary.nova.listServers({ allTenants: true, signal }),
      progress('volumes').then(() => primary.cinder.listVolumes({ allTenants: true, signal })),
    ]);
  } else {
    servers = [];
    volumes = [];
    await eachLimit(projects.filter((p) => p.enabled), opts.concurrency ?? 4, async (p) => {
      const c = os.clients(os.projectSession(p.authDomain, p.externalId));
      const [s, v] = await Promise.all([c.nova.listServers({ signal }), c.cinder.listVolumes({ signal })]);
      servers.push(...s);
      volumes.push(...v);
    });
    await progress('volumes');
  }
  const skipped = servers.filter((s) => !known.has(s.tenant_id)).length
    + volumes.filter((v) => !known.has(v['os-vol-tenant-attr:tenant_id'])).length;
  servers = dedupe(servers).filter((s) => known.has(s.tenant_id));
  volumes = dedupe(volumes).filter((v) => known.has(v['os-vol-tenant-attr:tenant_id']));
  signal?.throwIfAborted();

  // 5. Write everything in one transaction.
  await progress('write');
  const result = await em.transactional(async (tx) => {
    let changed = 0;
    const id = cloud.id;
    changed += await upsertRows(tx, 'project', id, ['external_id'], [
      { name: 'external_id', type: 'text' }, { name: 'name', type: 'text' }, { name: 'domain_id', type: 'text' },
      { name: 'enabled', type: 'boolean' }, { name: 'present', type: 'boolean' },
    ], projects.map((p) => ({ external_id: p.externalId, name: p.name, domain_id: p.domainId, enabled: p.enabled, present: true })));
    await markGone(tx, 'project', id, 'external_id', projects.map((p) => p.externalId));

    const realZones = zones.filter((z) => z.zoneName !== 'internal');
    changed += await upsertRows(tx, 'availability_zone', id, ['name'], [{ name: 'name', type: 'text' }], realZones.map((z) => ({ name: z.zoneName })));
    const zoneIds = await idMap(tx, 'availability_zone', id, 'name');
    const zoneOfHost = new Map<string, string>();
    for (const z of realZones) for (const [host, services] of Object.entries(z.hosts ?? {})) if ('nova-compute' in services) zoneOfHost.set(host, z.zoneName);

    changed += await upsertRows(tx, 'hypervisor', id, ['external_id'], [
      { name: 'external_id', type: 'text' }, { name: 'hostname', type: 'text' }, { name: 'host_ip', type: 'text' },
      { name: 'hypervisor_type', type: 'text' }, { name: 'zone_id', type: 'uuid' }, { name: 'present', type: 'boolean' },
    ], hypervisors.map((h) => ({
      external_id: String(h.id), hostname: h.hypervisor_hostname, host_ip: h.host_ip, hypervisor_type: h.hypervisor_type,
      zone_id: zoneIds.get(zoneOfHost.get(h.service.host) ?? '') ?? null, present: true,
    })));
    await markGone(tx, 'hypervisor', id, 'external_id', hypervisors.map((h) => String(h.id)));

    changed += await upsertRows(tx, 'flavor', id, ['external_id'], [
      { name: 'external_id', type: 'text' }, { name: 'name', type: 'text' }, { name: 'vcpus', type: 'int' },
      { name: 'ram_mib', type: 'int' }, { name: 'disk_gib', type: 'int' }, { name: 'ephemeral_gib', type: 'int' },
    ], flavors.map((f) => ({ external_id: f.id, name: f.name, vcpus: f.vcpus, ram_mib: f.ram, disk_gib: f.disk, ephemeral_gib: f['OS-FLV-EXT-DATA:ephemeral'] ?? 0 })));
    changed += await upsertRows(tx, 'network', id, ['external_id'], [
      { name: 'external_id', type: 'text' }, { name: 'name', type: 'text' }, { name: 'project_external_id', type: 'text' }, { name: 'shared', type: 'boolean' },
    ], networks.map((n) => ({ external_id: n.id, name: n.name || n.id, project_external_id: n.project_id ?? n.tenant_id ?? null, shared: n.shared })));
    changed += await upsertRows(tx, 'image', id, ['external_id'], [
      { name: 'external_id', type: 'text' }, { name: 'name', type: 'text' }, { name: 'size_bytes', type: 'bigint' },
      { name: 'disk_format', type: 'text' }, { name: 'status', type: 'text' }, { name: 'present', type: 'boolean' },
    ], images.map((i) => ({ external_id: i.id, name: i.name ?? i.id, size_bytes: i.size, disk_format: i.disk_format, status: i.status, present: true })));
    await markGone(tx, 'image', id, 'external_id', images.map((i) => i.id));
    changed += await upsertRows(tx, 'volume_type', id, ['external_id'], [{ name: 'external_id', type: 'text' }, { name: 'name', type: 'text' }],
      volumeTypes.map((t) => ({ external_id: t.id, name: t.name })));

    const projectIds = await idMap(tx, 'project', id);
    const hypervisorByHost = new Map(hypervisors.map((h) => [h.hypervisor_hostname, String(h.id)]));
    const hypervisorIds = await idMap(tx, 'hypervisor', id);
    const flavorIdByName = new Map<string, string>();
    const flavorIds = await idMap(tx, 'flavor', id);
    for (const f of flavors) flavorIdByName.set(f.name, flavorIds.get(f.id)!);
    const imageIds = await idMap(tx, 'image', id);

    changed += await upsertRows(tx, 'instance', id, ['external_id'], [
      { name: 'external_id', type: 'text' }, { name: 'name', type: 'text' }, { name: 'project_id', type: 'uuid' },
      { name: 'zone_id', type: 'uuid' }, { name: 'hypervisor_id', type: 'uuid' }, { name: 'flavor_id', type: 'uuid' },
      { name: 'image_id', type: 'uuid' }, { name: 'status', type: 'text' }, { name: 'present', type: 'boolean' }, { name: 'metadata', type: 'jsonb' },
    ], servers.map((s) => ({
      external_id: s.id,
      name: s.name,
      project_id: projectIds.get(s.tenant_id),
      zone_id: zoneIds.get(s['OS-EXT-AZ:availability_zone']) ?? null,
      hypervisor_id: hypervisorIds.get(hypervisorByHost.get(s['OS-EXT-SRV-ATTR:hypervisor_hostname'] ?? '') ?? '') ?? null,
      flavor_id: flavorIdByName.get(s.flavor.original_name) ?? null,
      image_id: s.image ? imageIds.get(s.image.id) ?? null : null,
      status: s.status,
      present: true,
      metadata: serverMetadata(s),
    })));
    const instancesGone = await markGone(tx, 'instance', id, 'external_id', servers.map((s) => s.id));

    const instanceIds = await idMap(tx, 'instance', id);
    const rootDevice = new Map(servers.map((s) => [s.id, s['OS-EXT-SRV-ATTR:root_device_name'] ?? null]));
    const typeIds = await idMap(tx, 'volume_type', id);
    const typeIdByName = new Map(volumeTypes.map((t) => [t.name, typeIds.get(t.id)!]));
    changed += await upsertRows(tx, 'volume', id, ['external_id'], [
      { name: 'external_id', type: 'text' }, { name: 'name', type: 'text' }, { name: 'project_id', type: 'uuid' },
      { name: 'instance_id', type: 'uuid' }, { name: 'kind', type: 'text' }, { name: 'size_bytes', type: 'bigint' },
      { name: 'volume_type_id', type: 'uuid' }, { name: 'boot_index', type: 'int' }, { name: 'device', type: 'text' }, { name: 'present', type: 'boolean' },
    ], volumes.map((v) => {
      const a = v.attachments[0];
      const root = a ? rootDevice.get(a.server_id) : null;
      return {
        external_id: v.id,
        name: v.name || v.id,
        project_id: projectIds.get(v['os-vol-tenant-attr:tenant_id']),
        instance_id: a ? instanceIds.get(a.server_id) ?? null : null,
        kind: 'CINDER',
        size_bytes: String(BigInt(v.size) * 1024n ** 3n),
        volume_type_id: (v.volume_type_id ? typeIds.get(v.volume_type_id) : typeIdByName.get(v.volume_type ?? '')) ?? null,
        boot_index: a && v.bootable === 'true' && root && a.device === root ? 0 : null,
        device: a?.device ?? null,
        present: true,
      };
    }));
    const volumesGone = await markGone(tx, 'volume', id, 'external_id', volumes.map((v) => v.id));
    await tx.nativeUpdate(Cloud, { id }, { lastSyncAt: new Date() });
    return { changed, instancesGone, volumesGone };
  });

  await opts.onProgress?.({ step: 'write', done: syncSteps.length, total: syncSteps.length });
  return {
    projects: projects.length, zones: zones.filter((z) => z.zoneName !== 'internal').length, hypervisors: hypervisors.length,
    flavors: flavors.length, networks: networks.length, images: images.length, volumeTypes: volumeTypes.length,
    instances: servers.length, volumes: volumes.length, skipped, ...result,
  };
}

/** Each auth domain lists its own domain's projects with its own credentials. */
async function fetchProjects(os: OpenStackCloud, signal?: AbortSignal): Promise<ProjectInfo[]> {
  const out = new Map<string, ProjectInfo>();
  for (const d of os.authDomains) {
    const session = os.identitySession(d.name);
    const token = await session.token(signal);
    const domainId = d.domainId ?? token.domain?.id ?? token.user.domain.id;
    const list = await os.keystone.listProjects(token, { iface: session.iface, region: session.region, domainId, signal });
    for (const p of list) if (!p.is_domain) out.set(p.id, { externalId: p.id, name: p.name, domainId: p.domain_id, enabled: p.enabled, authDomain: d.name });
  }
  return [...out.values()];
}

/** What the catalog keeps of a server between backups (backups capture their own, fuller copy). */
function serverMetadata(s: NovaServer): Record<string, unknown> {
  return {
    flavor: s.flavor,
    image: s.image ? s.image.id : null,
    keyName: s.key_name,
    addresses: s.addresses,
    securityGroups: (s.security_groups ?? []).map((g) => g.name),
    volumesAttached: s['os-extended-volumes:volumes_attached'].map((v) => v.id),
    rootDeviceName: s['OS-EXT-SRV-ATTR:root_device_name'] ?? null,
    host: s['OS-EXT-SRV-ATTR:host'],
    vmState: s['OS-EXT-STS:vm_state'],
    metadata: s.metadata,
    created: s.created,
  };
}

function dedupe<T extends { id: string }>(items: T[]): T[] {
  return [...new Map(items.map((i) => [i.id, i])).values()];
}

async function eachLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]!);
  }));
}
