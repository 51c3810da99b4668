// The simulator's in-memory cloud: identity, compute, block storage, images and networks.
import { randomUUID } from 'node:crypto';

export const hex32 = () => randomUUID().replaceAll('-', '');
export const nowIso = () => new Date().toISOString();
/** Nova/Cinder timestamps look like "2026-11-27T10:52:23.000000". */
export const osTime = (iso: string) => iso.replace('Z', '').replace(/\.(\d{3})$/, '.$1000');
/** Nova "created"/"updated" and Glance times look like "2026-11-27T10:51:46Z". */
export const zTime = (iso: string) => iso.replace(/\.\d{3}Z$/, 'Z');

export type SimDomain = { id: string; name: string; description: string; enabled: boolean };
export type SimProject = { id: string; name: string; domainId: string; description: string; enabled: boolean };
export type SimUser = { id: string; name: string; domainId: string; password: string };
/** A role assignment on a project or a domain. */
export type SimAssignment = { userId: string; projectId?: string; domainId?: string; roles: string[] };
export type SimRole = { id: string; name: string };

export type SimToken = {
  value: string;
  userId: string;
  projectId?: string;
  domainId?: string;
  roles: string[];
  issuedAt: string;
  expiresAt: string;
  auditId: string;
};

export type SimFlavor = { id: string; name: string; vcpus: number; ram: number; disk: number; ephemeral: number; isPublic: boolean };
export type SimHypervisor = { id: number; hostname: string; ip: string; zone: string; serviceId: number };
export type SimImage = {
  id: string; name: string; owner: string; visibility: string; status: string; size: number | null;
  diskFormat: string | null; containerFormat: string | null; checksum: string | null; sha512: string | null;
  minDisk: number; minRam: number; createdAt: string; updatedAt: string; properties: Record<string, unknown>;
};
export type SimNetwork = { id: string; name: string; projectId: string; shared: boolean; subnetId: string; cidr: string; createdAt: string };
export type SimPort = { id: string; name: string; networkId: string; projectId: string; deviceId: string; deviceOwner: string; mac: string; ip: string; securityGroups: string[]; createdAt: string; /** Made by Nova for a `networks: [{uuid}]` boot; deleted with the server. */ novaCreated?: boolean };
export type SimSecurityGroup = { id: string; name: string; projectId: string; description: string };

export type SimBdm = { volumeId: string; device: string; attachmentId: string; bdmUuid: string; deleteOnTermination: boolean; bootIndex: number | null };
export type SimServer = {
  id: string; name: string; projectId: string; userId: string; status: string; vmState: string; taskState: string | null;
  flavorId: string; imageId: string | null; zone: string; host: string; keyName: string | null; metadata: Record<string, string>;
  instanceName: string; securityGroups: string[]; createdAt: string; updatedAt: string; launchedAt: string | null;
  reservationId: string; bdms: SimBdm[]; deleted: boolean;
};

export type SimVolumeAttachment = { attachmentId: string; serverId: string; device: string; attachedAt: string; hostName: string };
export type SimVolume = {
  id: string; name: string | null; description: string | null; projectId: string; userId: string; size: number; status: string;
  typeId: string; zone: string; bootable: boolean; snapshotId: string | null; sourceVolid: string | null;
  metadata: Record<string, string>; createdAt: string; updatedAt: string | null; attachments: SimVolumeAttachment[];
};
export type SimSnapshot = {
  id: string; name: string | null; description: string | null; volumeId: string; projectId: string; size: number;
  status: string; metadata: Record<string, string>; createdAt: string; updatedAt: string | null;
};
/** Cinder's attachment record (3.27 API); `connectionInfo` once attached. */
export type SimCinderAttachment = { id: string; volumeId: string; serverId: string; status: string; attachedAt: string | null; connectionInfo: Record<string, unknown> | null };
export type SimVolumeType = { id: string; name: string; description: string | null; isPublic: boolean; extraSpecs: Record<string, string> };

export class SimState {
  domains = new Map<string, SimDomain>();
  projects = new Map<string, SimProject>();
  users = new Map<string, SimUser>();
  roles: SimRole[] = [
    { id: hex32(), name: 'reader' },
    { id: hex32(), name: 'member' },
    { id: hex32(), name: 'admin' },
  ];
  assignments: SimAssignment[] = [];
  tokens = new Map<string, SimToken>();

  flavors = new Map<string, SimFlavor>();
  zones: string[] = [];
  hypervisors: SimHypervisor[] = [];
  images = new Map<string, SimImage>();
  networks = new Map<string, SimNetwork>();
  ports = new Map<string, SimPort>();
  securityGroups = new Map<string, SimSecurityGroup>();
  servers = new Map<string, SimServer>();
  volumeTypes = new Map<string, SimVolumeType>();
  volumes = new Map<string, SimVolume>();
  snapshots = new Map<string, SimSnapshot>();
  attachments = new Map<string, SimCinderAttachment>();

  domainByName(name: string) {
    return [...this.domains.values()].find((d) => d.name === name);
  }
  projectByName(name: string, domainId: string) {
    return [...this.projects.values()].find((p) => p.name === name && p.domainId === domainId);
  }
  volumeTypeByName(name: string) {
    return [...this.volumeTypes.values()].find((t) => t.name === name);
  }
  defaultVolumeType(): SimVolumeType {
    return this.volumeTypeByName('__DEFAULT__') ?? [...this.volumeTypes.values()][0]!;
  }
  /** Live servers in list order. */
  liveServers(): SimServer[] {
    return [...this.servers.values()].filter((s) => !s.deleted);
  }
  rolesOf(userId: string, scope: { projectId?: string; domainId?: string }): string[] {
    const roles = new Set<string>();
    for (const a of this.assignments) {
      if (a.userId !== userId) continue;
      if ((scope.projectId && a.projectId === scope.projectId) || (scope.domainId && a.domainId === scope.domainId)) a.roles.forEach((r) => roles.add(r));
    }
    return [...roles];
  }
}
