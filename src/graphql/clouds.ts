// Clouds and what inventory sync copies from them: auth domains (never their passwords),
// availability zones, hypervisors (never their SSH passwords), flavors, networks, images and
// volume types. Configuration is for ADMIN and OPERATOR; see access.ts for the rest.
import {
  AvailabilityZone, Cloud, CloudAuthDomain, CloudModes, EndpointInterfaces, Flavor, Hypervisor, Image, Instance,
  Network, Visibilities, Volume, VolumeType,
} from '../db/entities/index.ts';
import { listRoles, readScope } from './access.ts';
import { builder } from './builder.ts';
import type { Context } from './context.ts';
import { connectionComplexity, keysetConnection, namedConnection } from './connections.ts';
import { containsPattern, idFilter } from './filters.ts';
import { parseGlobalId, registerNodeType, scopedLoad, viaLoader, visibleProjectIds } from './node.ts';
import {
  AvailabilityZoneRef, CloudAuthDomainRef, CloudRef, FlavorRef, HypervisorRef, ImageRef, NetworkRef, NodeConfigurationRef,
  ProjectRef, StorageProviderRef, VolumeTypeRef,
} from './refs.ts';

export const EndpointInterfaceEnum = builder.enumType('EndpointInterface', { values: EndpointInterfaces });
export const CloudModeEnum = builder.enumType('CloudMode', {
  description: 'How instance data leaves the cloud',
  values: CloudModes,
});
export const VisibilityEnum = builder.enumType('Visibility', {
  description: 'Which projects may use (and see) an object',
  values: Visibilities,
});

for (const name of ['Cloud', 'CloudAuthDomain', 'AvailabilityZone', 'Hypervisor', 'Flavor', 'Network', 'Image', 'VolumeType']) registerNodeType(name);

builder.loadableNode(CloudRef, {
  description: 'An OpenStack cloud: where its Keystone is and how its instances are protected',
  id: { resolve: (c) => c.id },
  load: scopedLoad(Cloud, 'Cloud'),
  sort: (c) => c.id,
  fields: (t) => ({
    name: t.exposeString('name'),
    keystoneUrl: t.exposeString('keystoneUrl', { description: 'Keystone v3 URL (path ends in /v3)' }),
    region: t.exposeString('region'),
    endpointInterface: t.field({ type: EndpointInterfaceEnum, resolve: (c) => c.endpointInterface }),
    mode: t.field({ type: CloudModeEnum, resolve: (c) => c.mode }),
    downloadImage: t.exposeBoolean('downloadImage', { description: 'Back up the Glance image of image-booted instances too' }),
    keepLastSnapshot: t.exposeBoolean('keepLastSnapshot', { description: "Keep each volume's last backup snapshot (the previous one is deleted when a new one is kept)" }),
    domainScoped: t.exposeBoolean('domainScoped', { description: 'Authenticate with domain-scoped tokens' }),
    nodeConfiguration: t.field({ type: NodeConfigurationRef, nullable: true, resolve: (c) => viaLoader(c.nodeConfiguration) }),
    authDomains: t.loadableGroup({
      type: CloudAuthDomainRef,
      description: 'Credential sets per OpenStack domain (passwords are never returned)',
      load: async (cloudIds: string[], ctx: Context) => {
        const scope = readScope(ctx, 'CloudAuthDomain');
        return scope ? ctx.em.find(CloudAuthDomain, { $and: [{ cloud: { $in: cloudIds } }, scope] }, { orderBy: { id: 'asc' } }) : [];
      },
      group: (d) => d.cloud.id,
      resolve: (c) => c.id,
    }),
    lastSyncAt: t.field({ type: 'DateTime', nullable: true, resolve: (c) => c.lastSyncAt ?? null }),
    createdAt: t.field({ type: 'DateTime', resolve: (c) => c.createdAt }),
  }),
});

builder.loadableNode(CloudAuthDomainRef, {
  description: "A cloud's credentials for one OpenStack domain; the password is sealed and never returned",
  id: { resolve: (d) => d.id },
  load: scopedLoad(CloudAuthDomain, 'CloudAuthDomain'),
  sort: (d) => d.id,
  fields: (t) => ({
    name: t.exposeString('name', { description: 'OpenStack domain name' }),
    domainId: t.exposeString('domainId', { nullable: true }),
    username: t.exposeString('username'),
    defaultProject: t.exposeString('defaultProject'),
    hasPassword: t.boolean({ resolve: (d) => Boolean(d.password) }),
    cloud: t.field({ type: CloudRef, nullable: true, resolve: (d) => viaLoader(d.cloud) }),
  }),
});

builder.loadableNode(AvailabilityZoneRef, {
  description: 'A Nova availability zone; may map to the Ceph storage provider behind it',
  id: { resolve: (z) => z.id },
  load: scopedLoad(AvailabilityZone, 'AvailabilityZone'),
  sort: (z) => z.id,
  fields: (t) => ({
    name: t.exposeString('name'),
    cloud: t.field({ type: CloudRef, nullable: true, resolve: (z) => viaLoader(z.cloud) }),
    storageProvider: t.field({ type: StorageProviderRef, nullable: true, resolve: (z) => viaLoader(z.storageProvider) }),
    nodeConfiguration: t.field({ type: NodeConfigurationRef, nullable: true, resolve: (z) => viaLoader(z.nodeConfiguration) }),
    visibility: t.field({ type: VisibilityEnum, description: 'Which projects may restore into this zone', resolve: (z) => z.visibility }),
    projects: t.field({
      type: [ProjectRef],
      description: 'The chosen projects (a TENANT sees only its own among them)',
      resolve: (z, _a, ctx) => visibleProjectIds(ctx, 'availability_zone_project', 'availability_zone_id', z.id) as never,
    }),
  }),
});

builder.loadableNode(HypervisorRef, {
  description: 'A compute host; its SSH password is sealed and never returned',
  id: { resolve: (h) => h.id },
  load: scopedLoad(Hypervisor, 'Hypervisor'),
  sort: (h) => h.id,
  fields: (t) => ({
    externalId: t.exposeString('externalId'),
    hostname: t.exposeString('hostname'),
    hostIp: t.exposeString('hostIp', { nullable: true }),
    hypervisorType: t.exposeString('hypervisorType', { nullable: true }),
    sshUser: t.exposeString('sshUser', { nullable: true }),
    hasSshPassword: t.boolean({ resolve: (h) => Boolean(h.sshPassword) }),
    sshKeyPath: t.exposeString('sshKeyPath', { nullable: true }),
    sshPort: t.exposeInt('sshPort'),
    commandPrefix: t.exposeString('commandPrefix', { nullable: true, description: 'e.g. `docker exec nova_libvirt`' }),
    netcatPort: t.exposeInt('netcatPort', { nullable: true, description: 'Disk data travels over a plain TCP relay on this port (trusted networks); null: through SSH' }),
    present: t.exposeBoolean('present'),
    cloud: t.field({ type: CloudRef, nullable: true, resolve: (h) => viaLoader(h.cloud) }),
    zone: t.field({ type: AvailabilityZoneRef, nullable: true, resolve: (h) => viaLoader(h.zone) }),
    nodeConfiguration: t.field({ type: NodeConfigurationRef, nullable: true, resolve: (h) => viaLoader(h.nodeConfiguration) }),
  }),
});

/** Catalog rows a TENANT may read: only those its own instances or volumes use. */
function catalogLoad<T extends { id: string }>(entity: typeof Flavor | typeof Image | typeof VolumeType, name: 'Flavor' | 'Image' | 'VolumeType') {
  const load = scopedLoad(entity as never, name);
  return async (ids: readonly string[], ctx: Context): Promise<T[]> => {
    const rows = (await load(ids, ctx)) as T[];
    const mine = ctx.viewer?.projectIds;
    if (mine === null || mine === undefined || rows.length === 0) return rows;
    const used = new Set<string>();
    const keys = rows.map((r) => r.id);
    if (name === 'VolumeType') {
      for (const v of await ctx.em.find(Volume, { volumeType: { $in: keys }, project: { $in: mine } }, { fields: ['volumeType'] })) used.add(v.volumeType!.id);
    } else {
      const field = name === 'Flavor' ? 'flavor' : 'image';
      for (const i of await ctx.em.find(Instance, { [field]: { $in: keys }, project: { $in: mine } }, { fields: [field] })) used.add(i[field]!.id);
    }
    return rows.filter((r) => used.has(r.id));
  };
}

builder.loadableNode(FlavorRef, {
  id: { resolve: (f) => f.id },
  load: catalogLoad<Flavor>(Flavor, 'Flavor'),
  sort: (f) => f.id,
  fields: (t) => ({
    externalId: t.exposeString('externalId'),
    name: t.exposeString('name'),
    vcpus: t.exposeInt('vcpus'),
    ramMib: t.exposeInt('ramMib'),
    diskGib: t.exposeInt('diskGib'),
    ephemeralGib: t.exposeInt('ephemeralGib'),
  }),
});

builder.loadableNode(NetworkRef, {
  id: { resolve: (n) => n.id },
  load: scopedLoad(Network, 'Network'),
  sort: (n) => n.id,
  fields: (t) => ({
    externalId: t.exposeString('externalId'),
    name: t.exposeString('name'),
    projectExternalId: t.exposeString('projectExternalId', { nullable: true }),
    shared: t.exposeBoolean('shared'),
    cloud: t.field({ type: CloudRef, nullable: true, resolve: (n) => viaLoader(n.cloud) }),
  }),
});

builder.loadableNode(ImageRef, {
  id: { resolve: (i) => i.id },
  load: catalogLoad<Image>(Image, 'Image'),
  sort: (i) => i.id,
  fields: (t) => ({
    externalId: t.exposeString('externalId'),
    name: t.exposeString('name'),
    sizeBytes: t.field({ type: 'Bytes', nullable: true, resolve: (i) => i.sizeBytes ?? null }),
    diskFormat: t.exposeString('diskFormat', { nullable: true }),
    status: t.exposeString('status', { nullable: true }),
    present: t.exposeBoolean('present'),
  }),
});

builder.loadableNode(VolumeTypeRef, {
  id: { resolve: (v) => v.id },
  load: catalogLoad<VolumeType>(VolumeType, 'VolumeType'),
  sort: (v) => v.id,
  fields: (t) => ({
    externalId: t.exposeString('externalId'),
    name: t.exposeString('name'),
    cephPool: t.exposeString('cephPool', { nullable: true, description: 'The Ceph pool behind this type, when RBD-backed' }),
    cloud: t.field({ type: CloudRef, nullable: true, resolve: (v) => viaLoader(v.cloud) }),
  }),
});

builder.queryField('clouds', (t) =>
  t.connection(
    {
      type: CloudRef,
      authScopes: { role: listRoles('Cloud') },
      complexity: connectionComplexity,
      resolve: (_root, args, ctx) => keysetConnection(ctx, Cloud, readScope(ctx, 'Cloud')!, args),
    },
    ...namedConnection('Cloud'),
  ),
);

const CloudScopedFilter = builder.inputType('CloudScopedFilter', {
  fields: (t) => ({
    cloudId: t.id({ description: 'Only rows of this cloud' }),
    nameContains: t.string({ description: 'Case-insensitive part of the name (hostname for hypervisors)' }),
  }),
});

/** A root list of a cloud's inventory rows (zones, hypervisors, volume types), filterable by cloud. */
function cloudInventoryList<T extends { id: string }>(
  field: string,
  ref: any,
  entity: any,
  name: 'AvailabilityZone' | 'Hypervisor' | 'VolumeType',
  nameColumn: string,
  description: string,
) {
  builder.queryField(field, (t) =>
    t.connection(
      {
        type: ref,
        description,
        // Listing the whole catalog is staff-only; a TENANT reads volume types only through its volumes.
        authScopes: { role: name === 'VolumeType' ? ['ADMIN', 'OPERATOR'] : listRoles(name) },
        complexity: connectionComplexity,
        args: { filter: t.arg({ type: CloudScopedFilter }) },
        resolve: (_root, args, ctx) => {
          const f = args.filter ?? {};
          const where: Record<string, unknown>[] = [readScope(ctx, name)!];
          if (f.cloudId != null) where.push({ cloud: idFilter(parseGlobalId(String(f.cloudId), 'Cloud')) });
          if (f.nameContains != null) where.push({ [nameColumn]: { $ilike: containsPattern(f.nameContains) } });
          return keysetConnection<T>(ctx, entity, { $and: where }, args) as never;
        },
      },
      ...namedConnection(name),
    ),
  );
}

cloudInventoryList('availabilityZones', AvailabilityZoneRef, AvailabilityZone, 'AvailabilityZone', 'name', 'Availability zones (a TENANT sees those visible to its projects)');
cloudInventoryList('hypervisors', HypervisorRef, Hypervisor, 'Hypervisor', 'hostname', 'Compute hosts (ADMIN, OPERATOR)');
cloudInventoryList('volumeTypes', VolumeTypeRef, VolumeType, 'VolumeType', 'name', 'Cinder volume types and their Ceph pools (ADMIN, OPERATOR)');
