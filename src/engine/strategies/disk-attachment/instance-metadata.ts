// What a restore needs to rebuild an instance, captured at backup time: the server, its flavor,
// ports/networks, security groups, key pair, image, and its disks with type, size and boot order.
// Nova root disks and ephemeral disks (no Cinder volume) are listed as not covered: this
// strategy reads Cinder volumes only.
import type { CinderVolume, NovaServer, ServiceClients } from '../../../openstack/index.ts';
import type { BackedUpImage } from '../../backup/glance-image.ts';

export type CapturedDisk = {
  volumeId: string;
  name: string | null;
  sizeGiB: number;
  volumeType: string | null;
  availabilityZone: string;
  bootable: boolean;
  /** 0 for the root volume, null for data volumes. */
  bootIndex: number | null;
  device: string | null;
};

export type InstanceMetadata = {
  server: { id: string; name: string; projectId: string; availabilityZone: string; status: string; metadata: Record<string, string>; description?: string | null };
  flavor: NovaServer['flavor'];
  image: string | null;
  keyName: string | null;
  securityGroups: string[];
  ports: { id: string; networkId: string; macAddress: string; fixedIps: { subnetId: string; ipAddress: string }[]; securityGroups: string[] }[];
  disks: CapturedDisk[];
  /** Disks this strategy does not back up (Nova root/ephemeral/swap). */
  notCovered: string[];
  /** The base image, when the cloud downloads images from Glance (glance-image.ts). */
  glanceImage?: BackedUpImage;
  capturedAt: string;
};

export async function captureInstance(os: ServiceClients, serverId: string, signal?: AbortSignal): Promise<InstanceMetadata> {
  const server = await os.nova.getServer(serverId, signal);
  const ports = await os.neutron.listPorts({ deviceId: serverId }, signal);
  const rootDevice = server['OS-EXT-SRV-ATTR:root_device_name'] ?? '/dev/vda';
  const volumes: CinderVolume[] = [];
  for (const { id } of server['os-extended-volumes:volumes_attached'] ?? []) volumes.push(await os.cinder.getVolume(id, signal));
  const disks = volumes.map((v): CapturedDisk => {
    const device = v.attachments.find((a) => a.server_id === serverId)?.device ?? null;
    const root = server.image === '' && device === rootDevice;
    return {
      volumeId: v.id, name: v.name, sizeGiB: v.size, volumeType: v.volume_type, availabilityZone: v.availability_zone,
      bootable: v.bootable === 'true', bootIndex: root ? 0 : null, device,
    };
  });
  // Root volume first, then by device name: the repository's disk positions follow this order.
  disks.sort((a, b) => (a.bootIndex ?? 1) - (b.bootIndex ?? 1) || (a.device ?? '').localeCompare(b.device ?? ''));
  const notCovered: string[] = [];
  // An image-booted root disk lives on the hypervisor, not in Cinder: no volume to snapshot.
  if (server.image !== '') {
    notCovered.push(`nova root disk (${server.flavor.disk} GiB, booted from image ${server.image.id}): not a Cinder volume, its data is not backed up; "download image from Glance" keeps only the base image`);
  }
  if (server.flavor.ephemeral > 0) notCovered.push(`ephemeral disk (${server.flavor.ephemeral} GiB)`);
  if (server.flavor.swap > 0) notCovered.push(`swap (${server.flavor.swap} MiB)`);
  return {
    server: {
      id: server.id, name: server.name, projectId: server.tenant_id, availabilityZone: server['OS-EXT-AZ:availability_zone'],
      status: server.status, metadata: server.metadata, description: server.description,
    },
    flavor: server.flavor,
    image: server.image === '' ? null : server.image.id,
    keyName: server.key_name,
    securityGroups: [...new Set((server.security_groups ?? []).map((g) => g.name))],
    ports: ports.map((p) => ({
      id: p.id, networkId: p.network_id, macAddress: p.mac_address,
      fixedIps: p.fixed_ips.map((f) => ({ subnetId: f.subnet_id, ipAddress: f.ip_address })), securityGroups: p.security_groups,
    })),
    disks,
    notCovered,
    capturedAt: new Date().toISOString(),
  };
}
