// Serializers to the exact JSON shapes of a real OpenStack Zed (field sets copied from
// /work/shared/openstack-samples). `mv` is the request's microversion.
import type {
  SimCinderAttachment, SimDomain, SimFlavor, SimHypervisor, SimImage, SimNetwork, SimPort, SimProject, SimSecurityGroup,
  SimServer, SimSnapshot, SimState, SimToken, SimVolume, SimVolumeType,
} from './model.ts';
import { osTime, zTime } from './model.ts';

export type Version = [number, number];
export const atLeast = (mv: Version, major: number, minor: number) => mv[0] > major || (mv[0] === major && mv[1] >= minor);

const link = (href: string, rel: string) => ({ href, rel });

export function project(p: SimProject, identityUrl: string) {
  return {
    description: p.description, domain_id: p.domainId, enabled: p.enabled, id: p.id, is_domain: false,
    links: { self: `${identityUrl}/projects/${p.id}` }, name: p.name, options: {}, parent_id: p.domainId, tags: [],
  };
}

export function domain(d: SimDomain, identityUrl: string) {
  return { description: d.description, enabled: d.enabled, id: d.id, links: { self: `${identityUrl}/domains/${d.id}` }, name: d.name, options: {}, tags: [] };
}

export type CatalogEntry = { id: string; name: string; type: string; endpoints: { id: string; interface: string; region: string; region_id: string; url: string }[] };

export function token(state: SimState, t: SimToken, catalog: CatalogEntry[]) {
  const user = state.users.get(t.userId)!;
  const userDomain = state.domains.get(user.domainId)!;
  const body: Record<string, unknown> = {
    audit_ids: [t.auditId],
    catalog,
    expires_at: t.expiresAt.replace(/\.(\d{3})Z$/, '.$1000Z'),
    is_domain: false,
    issued_at: t.issuedAt.replace(/\.(\d{3})Z$/, '.$1000Z'),
    methods: ['password'],
    roles: state.roles.filter((r) => t.roles.includes(r.name)).map((r) => ({ id: r.id, name: r.name })),
    user: { domain: { id: userDomain.id, name: userDomain.name }, id: user.id, name: user.name, password_expires_at: null },
  };
  if (t.projectId) {
    const p = state.projects.get(t.projectId)!;
    const d = state.domains.get(p.domainId)!;
    body.project = { domain: { id: d.id, name: d.name }, id: p.id, name: p.name };
  } else if (t.domainId) {
    const d = state.domains.get(t.domainId)!;
    body.domain = { id: d.id, name: d.name };
    delete body.is_domain;
  }
  return { token: body };
}

export function flavor(f: SimFlavor, computeUrl: string, root: string) {
  return {
    'OS-FLV-DISABLED:disabled': false, 'OS-FLV-EXT-DATA:ephemeral': f.ephemeral, disk: f.disk, id: f.id,
    links: [link(`${computeUrl}/flavors/${f.id}`, 'self'), link(`${root}/flavors/${f.id}`, 'bookmark')],
    name: f.name, 'os-flavor-access:is_public': f.isPublic, ram: f.ram, rxtx_factor: 1.0, swap: '', vcpus: f.vcpus,
  };
}

export function hypervisor(h: SimHypervisor, runningVms: number) {
  return {
    cpu_info: JSON.stringify({ arch: 'x86_64', model: 'Nehalem', vendor: 'Intel', features: ['pge', 'clflush'], topology: { cores: 1, threads: 1, sockets: 4 } }),
    current_workload: 0, disk_available_least: 0, free_disk_gb: 599998, free_ram_mb: 798464, host_ip: h.ip,
    hypervisor_hostname: h.hostname, hypervisor_type: 'fake', hypervisor_version: 1000, id: h.id, local_gb: 600000,
    local_gb_used: 2, memory_mb: 800000, memory_mb_used: 1536, running_vms: runningVms,
    service: { disabled_reason: null, host: h.hostname, id: h.serviceId }, state: 'up', status: 'enabled', vcpus: 1000, vcpus_used: 2,
  };
}

export function zonesDetail(state: SimState) {
  const ts = osTime(new Date().toISOString());
  const svc = { active: true, available: true, updated_at: ts };
  const hostsOf = (zone: string) => Object.fromEntries(state.hypervisors.filter((h) => h.zone === zone).map((h) => [h.hostname, { 'nova-compute': svc }]));
  return {
    availabilityZoneInfo: [
      { hosts: { [state.hypervisors[0]?.hostname ?? 'controller']: { 'nova-conductor': svc, 'nova-scheduler': svc } }, zoneName: 'internal', zoneState: { available: true } },
      ...state.zones.map((z) => ({ hosts: hostsOf(z), zoneName: z, zoneState: { available: true } })),
    ],
  };
}

export function server(state: SimState, s: SimServer, mv: Version, computeUrl: string, root: string) {
  const f = state.flavors.get(s.flavorId);
  const addresses: Record<string, unknown[]> = {};
  for (const p of state.ports.values()) {
    if (p.deviceId !== s.id) continue;
    const net = state.networks.get(p.networkId);
    (addresses[net?.name ?? p.networkId] ??= []).push({ 'OS-EXT-IPS-MAC:mac_addr': p.mac, 'OS-EXT-IPS:type': 'fixed', addr: p.ip, version: 4 });
  }
  const out: Record<string, unknown> = {
    'OS-DCF:diskConfig': 'MANUAL',
    'OS-EXT-AZ:availability_zone': s.zone,
    'OS-EXT-SRV-ATTR:host': s.host,
    'OS-EXT-SRV-ATTR:hypervisor_hostname': s.host,
    'OS-EXT-SRV-ATTR:instance_name': s.instanceName,
    'OS-EXT-STS:power_state': s.status === 'ACTIVE' ? 1 : 0,
    'OS-EXT-STS:task_state': s.taskState,
    'OS-EXT-STS:vm_state': s.vmState,
    'OS-SRV-USG:launched_at': s.launchedAt ? osTime(s.launchedAt) : null,
    'OS-SRV-USG:terminated_at': null,
    accessIPv4: '',
    accessIPv6: '',
    addresses,
    config_drive: '',
    created: zTime(s.createdAt),
    flavor: atLeast(mv, 2, 47)
      ? { disk: f?.disk ?? 0, ephemeral: f?.ephemeral ?? 0, extra_specs: {}, original_name: f?.name ?? 'deleted', ram: f?.ram ?? 0, swap: 0, vcpus: f?.vcpus ?? 0 }
      : { id: s.flavorId, links: [link(`${root}/flavors/${s.flavorId}`, 'bookmark')] },
    hostId: '27b476973e21fcccc124e961f80bc6a55be02454f6774c8df6c53512',
    id: s.id,
    image: s.imageId ? { id: s.imageId, links: [link(`${root}/images/${s.imageId}`, 'bookmark')] } : '',
    key_name: s.keyName,
    links: [link(`${computeUrl}/servers/${s.id}`, 'self'), link(`${root}/servers/${s.id}`, 'bookmark')],
    metadata: s.metadata,
    name: s.name,
    'os-extended-volumes:volumes_attached': s.bdms.map((b) => (atLeast(mv, 2, 3) ? { delete_on_termination: b.deleteOnTermination, id: b.volumeId } : { id: b.volumeId })),
    progress: 0,
    security_groups: s.securityGroups.map((name) => ({ name })),
    status: s.status,
    tenant_id: s.projectId,
    updated: zTime(s.updatedAt),
    user_id: s.userId,
  };
  if (atLeast(mv, 2, 3)) {
    Object.assign(out, {
      'OS-EXT-SRV-ATTR:hostname': s.name, 'OS-EXT-SRV-ATTR:kernel_id': '', 'OS-EXT-SRV-ATTR:launch_index': 0,
      'OS-EXT-SRV-ATTR:ramdisk_id': '', 'OS-EXT-SRV-ATTR:reservation_id': s.reservationId,
      'OS-EXT-SRV-ATTR:root_device_name': s.imageId ? '/dev/sda' : '/dev/vda', 'OS-EXT-SRV-ATTR:user_data': null,
    });
  }
  if (atLeast(mv, 2, 9)) Object.assign(out, { locked: false });
  if (atLeast(mv, 2, 73)) Object.assign(out, { locked_reason: null });
  if (atLeast(mv, 2, 19)) Object.assign(out, { description: null });
  if (atLeast(mv, 2, 26)) Object.assign(out, { tags: [] });
  if (atLeast(mv, 2, 16)) Object.assign(out, { host_status: 'UP' });
  if (atLeast(mv, 2, 63)) Object.assign(out, { trusted_image_certificates: null });
  return out;
}

export function novaAttachment(s: SimServer, b: SimServer['bdms'][number], mv: Version) {
  if (atLeast(mv, 2, 89)) {
    return { attachment_id: b.attachmentId, bdm_uuid: b.bdmUuid, delete_on_termination: b.deleteOnTermination, device: b.device, serverId: s.id, tag: null, volumeId: b.volumeId };
  }
  const out: Record<string, unknown> = { device: b.device, id: b.volumeId, serverId: s.id, volumeId: b.volumeId };
  if (atLeast(mv, 2, 70)) out.tag = null;
  if (atLeast(mv, 2, 79)) out.delete_on_termination = b.deleteOnTermination;
  return out;
}

export function volume(state: SimState, v: SimVolume, mv: Version, volumeUrl: string, root: string) {
  const type = state.volumeTypes.get(v.typeId);
  const out: Record<string, unknown> = {
    attachments: v.attachments.map((a) => ({
      attached_at: osTime(a.attachedAt), attachment_id: a.attachmentId, device: a.device, host_name: a.hostName,
      id: v.id, server_id: a.serverId, volume_id: v.id,
    })),
    availability_zone: v.zone,
    bootable: v.bootable ? 'true' : 'false',
    consistencygroup_id: null,
    created_at: osTime(v.createdAt),
    description: v.description,
    encrypted: false,
    id: v.id,
    links: [link(`${volumeUrl}/volumes/${v.id}`, 'self'), link(`${root}/volumes/${v.id}`, 'bookmark')],
    metadata: v.metadata,
    migration_status: null,
    multiattach: false,
    name: v.name,
    'os-vol-host-attr:host': 'sim-storage@nfs1#nfs1',
    'os-vol-mig-status-attr:migstat': null,
    'os-vol-mig-status-attr:name_id': null,
    'os-vol-tenant-attr:tenant_id': v.projectId,
    replication_status: null,
    size: v.size,
    snapshot_id: v.snapshotId,
    source_volid: v.sourceVolid,
    status: v.status,
    updated_at: v.updatedAt ? osTime(v.updatedAt) : null,
    user_id: v.userId,
    volume_type: type?.name ?? null,
  };
  if (atLeast(mv, 3, 13)) out.group_id = null;
  if (atLeast(mv, 3, 21)) out.provider_id = null;
  if (atLeast(mv, 3, 48)) out.service_uuid = '5e72994b-9f9e-4882-beff-e6064bc84eb5';
  if (atLeast(mv, 3, 48)) out.shared_targets = false;
  if (atLeast(mv, 3, 61)) out.cluster_name = null;
  if (atLeast(mv, 3, 63)) out.volume_type_id = v.typeId;
  if (atLeast(mv, 3, 65)) out.consumes_quota = true;
  return out;
}

export function snapshot(s: SimSnapshot) {
  return {
    created_at: osTime(s.createdAt), description: s.description, id: s.id, metadata: s.metadata, name: s.name,
    'os-extended-snapshot-attributes:progress': s.status === 'available' ? '100%' : '0%',
    'os-extended-snapshot-attributes:project_id': s.projectId, size: s.size, status: s.status,
    updated_at: s.updatedAt ? osTime(s.updatedAt) : null, volume_id: s.volumeId,
  };
}

export function volumeType(t: SimVolumeType) {
  return {
    description: t.description, extra_specs: t.extraSpecs, id: t.id, is_public: t.isPublic, name: t.name,
    'os-volume-type-access:is_public': t.isPublic, qos_specs_id: null,
  };
}

export function cinderAttachment(a: SimCinderAttachment) {
  return {
    attach_mode: 'rw', attached_at: a.attachedAt ? osTime(a.attachedAt) : '', connection_info: a.connectionInfo,
    detached_at: '', id: a.id, instance: a.serverId, status: a.status, volume_id: a.volumeId,
  };
}

export function image(i: SimImage) {
  return {
    checksum: i.checksum, container_format: i.containerFormat, created_at: zTime(i.createdAt), disk_format: i.diskFormat,
    file: `/v2/images/${i.id}/file`, id: i.id, min_disk: i.minDisk, min_ram: i.minRam, name: i.name,
    os_hash_algo: i.sha512 ? 'sha512' : null, os_hash_value: i.sha512, os_hidden: false, owner: i.owner, protected: false,
    schema: '/v2/schemas/image', self: `/v2/images/${i.id}`, size: i.size, status: i.status, stores: i.status === 'active' ? 'fs' : undefined,
    tags: [], updated_at: zTime(i.updatedAt), virtual_size: i.size, visibility: i.visibility, ...i.properties,
  };
}

export function network(n: SimNetwork) {
  return {
    admin_state_up: true, availability_zone_hints: [], availability_zones: ['nova'], created_at: zTime(n.createdAt), description: '',
    id: n.id, ipv4_address_scope: null, ipv6_address_scope: null, 'router:external': false, mtu: 1450, name: n.name,
    port_security_enabled: true, project_id: n.projectId, 'provider:network_type': 'vxlan', 'provider:physical_network': null,
    'provider:segmentation_id': 1000, revision_number: 1, shared: n.shared, status: 'ACTIVE', subnets: [n.subnetId], tags: [],
    tenant_id: n.projectId, updated_at: zTime(n.createdAt),
  };
}

export function port(p: SimPort, subnetId: string) {
  return {
    admin_state_up: true, allowed_address_pairs: [], binding_vnic_type: 'normal', created_at: zTime(p.createdAt), description: '',
    device_id: p.deviceId, device_owner: p.deviceOwner, extra_dhcp_opts: [], fixed_ips: [{ ip_address: p.ip, subnet_id: subnetId }],
    id: p.id, mac_address: p.mac, name: p.name, network_id: p.networkId, port_security_enabled: true, project_id: p.projectId,
    revision_number: 1, security_groups: p.securityGroups, status: p.deviceId ? 'ACTIVE' : 'DOWN', tags: [], tenant_id: p.projectId,
    updated_at: zTime(p.createdAt),
  };
}

export function securityGroup(g: SimSecurityGroup) {
  return { description: g.description, id: g.id, name: g.name, project_id: g.projectId, tenant_id: g.projectId, security_group_rules: [], stateful: true, tags: [] };
}
