// Nova (compute v2.1): servers across tenants with paging, flavors, availability zones,
// hypervisors, volume attachments, server create/delete. Microversion 2.89 where the samples
// use it (servers with embedded flavor, attachments with attachment_id).
import { OpenStackError } from './errors.ts';
import { computeVersion, nextMarker, type Session } from './session.ts';
import { waitForGone, waitForStatus, type WaitOptions } from './wait.ts';

export const NOVA_MICROVERSION = '2.89';
const mv = computeVersion(NOVA_MICROVERSION);

type Link = { href: string; rel: string };

export type NovaServer = {
  id: string;
  name: string;
  status: string;
  tenant_id: string;
  user_id: string;
  created: string;
  updated: string;
  'OS-EXT-AZ:availability_zone': string;
  'OS-EXT-SRV-ATTR:host': string | null;
  'OS-EXT-SRV-ATTR:hypervisor_hostname': string | null;
  'OS-EXT-SRV-ATTR:instance_name': string;
  'OS-EXT-SRV-ATTR:root_device_name'?: string | null;
  'OS-EXT-STS:vm_state': string;
  'OS-EXT-STS:task_state': string | null;
  'OS-EXT-STS:power_state': number;
  addresses: Record<string, { addr: string; version: number; 'OS-EXT-IPS:type'?: string; 'OS-EXT-IPS-MAC:mac_addr'?: string }[]>;
  flavor: { disk: number; ephemeral: number; extra_specs?: Record<string, string>; original_name: string; ram: number; swap: number; vcpus: number };
  /** "" when booted from a volume. */
  image: { id: string; links: Link[] } | '';
  key_name: string | null;
  metadata: Record<string, string>;
  'os-extended-volumes:volumes_attached': { id: string; delete_on_termination?: boolean }[];
  security_groups?: { name: string }[];
  tags?: string[];
  description?: string | null;
  links: Link[];
};

export type NovaFlavor = {
  id: string;
  name: string;
  vcpus: number;
  ram: number;
  disk: number;
  'OS-FLV-EXT-DATA:ephemeral': number;
  'OS-FLV-DISABLED:disabled': boolean;
  'os-flavor-access:is_public': boolean;
  swap: number | '';
  rxtx_factor: number;
};

export type NovaAvailabilityZone = {
  zoneName: string;
  zoneState: { available: boolean };
  hosts: Record<string, Record<string, { active: boolean; available: boolean; updated_at: string | null }>> | null;
};

export type NovaHypervisor = {
  id: number | string;
  hypervisor_hostname: string;
  hypervisor_type: string;
  host_ip: string;
  state: string;
  status: string;
  service: { host: string; id: number | string; disabled_reason: string | null };
  vcpus?: number;
  memory_mb?: number;
  running_vms?: number;
};

/** GET …/os-volume_attachments at 2.89. */
export type NovaVolumeAttachment = {
  attachment_id: string;
  bdm_uuid: string;
  delete_on_termination: boolean;
  device: string | null;
  serverId: string;
  tag: string | null;
  volumeId: string;
};

export type ServerCreate = {
  name: string;
  flavorRef: string;
  imageRef?: string;
  availability_zone?: string;
  key_name?: string;
  security_groups?: { name: string }[];
  /** "none", "auto", or explicit networks/ports (2.37+). */
  networks: 'none' | 'auto' | ({ uuid: string } | { port: string })[];
  block_device_mapping_v2?: {
    boot_index: number | null;
    uuid: string;
    source_type: 'volume' | 'image' | 'snapshot' | 'blank';
    destination_type: 'volume' | 'local';
    delete_on_termination?: boolean;
    device_name?: string;
  }[];
  metadata?: Record<string, string>;
};

export class NovaClient {
  constructor(readonly session: Session) {}

  /** All servers the token may see; `allTenants` needs an admin token. Pages by marker. */
  async listServers(opts: { allTenants?: boolean; projectId?: string; pageSize?: number; signal?: AbortSignal; onPage?: (n: number) => void } = {}): Promise<NovaServer[]> {
    const out: NovaServer[] = [];
    let marker: string | undefined;
    for (;;) {
      const page = await this.session.json<{ servers: NovaServer[]; servers_links?: Link[] }>('compute', 'GET', '/servers/detail', {
        headers: mv,
        signal: opts.signal,
        query: {
          all_tenants: opts.allTenants ? 'True' : undefined,
          project_id: opts.projectId,
          limit: opts.pageSize ?? 1000,
          marker,
        },
      });
      out.push(...page.servers);
      opts.onPage?.(out.length);
      marker = nextMarker(page.servers_links);
      if (!marker || page.servers.length === 0) return out;
    }
  }

  async getServer(id: string, signal?: AbortSignal): Promise<NovaServer> {
    return (await this.session.json<{ server: NovaServer }>('compute', 'GET', `/servers/${id}`, { headers: mv, signal })).server;
  }

  async createServer(server: ServerCreate, signal?: AbortSignal): Promise<{ id: string }> {
    return (await this.session.json<{ server: { id: string } }>('compute', 'POST', '/servers', { headers: mv, json: { server }, signal })).server;
  }

  async deleteServer(id: string, signal?: AbortSignal): Promise<void> {
    await this.session.request('compute', 'DELETE', `/servers/${id}`, { headers: mv, expect: 'none', signal });
  }

  /** Nova's os-stop action: the server goes ACTIVE → SHUTOFF (poll). */
  async stopServer(id: string, signal?: AbortSignal): Promise<void> {
    await this.session.request('compute', 'POST', `/servers/${id}/action`, { headers: mv, json: { 'os-stop': null }, expect: 'none', signal });
  }

  /** Nova's os-start action: the server goes SHUTOFF → ACTIVE (poll). */
  async startServer(id: string, signal?: AbortSignal): Promise<void> {
    await this.session.request('compute', 'POST', `/servers/${id}/action`, { headers: mv, json: { 'os-start': null }, expect: 'none', signal });
  }

  async waitForServer(id: string, wanted: string[] = ['ACTIVE'], opts: WaitOptions = {}): Promise<NovaServer> {
    return waitForStatus(`server ${id}`, () => this.getServer(id, opts.signal), (s) => s.status, wanted, opts);
  }

  async waitForServerGone(id: string, opts: WaitOptions = {}): Promise<void> {
    await waitForGone(`server ${id} deletion`, async () => {
      try {
        await this.getServer(id, opts.signal);
        return false;
      } catch (err) {
        if (err instanceof OpenStackError && err.notFound) return true;
        throw err;
      }
    }, opts);
  }

  /** Every flavor, public and private (admin). */
  async listFlavors(signal?: AbortSignal): Promise<NovaFlavor[]> {
    return (await this.session.json<{ flavors: NovaFlavor[] }>('compute', 'GET', '/flavors/detail', { query: { is_public: 'None' }, signal })).flavors;
  }

  async listAvailabilityZones(signal?: AbortSignal): Promise<NovaAvailabilityZone[]> {
    return (await this.session.json<{ availabilityZoneInfo: NovaAvailabilityZone[] }>('compute', 'GET', '/os-availability-zone/detail', { signal })).availabilityZoneInfo;
  }

  async listHypervisors(signal?: AbortSignal): Promise<NovaHypervisor[]> {
    return (await this.session.json<{ hypervisors: NovaHypervisor[] }>('compute', 'GET', '/os-hypervisors/detail', { signal })).hypervisors;
  }

  async listVolumeAttachments(serverId: string, signal?: AbortSignal): Promise<NovaVolumeAttachment[]> {
    return (await this.session.json<{ volumeAttachments: NovaVolumeAttachment[] }>('compute', 'GET', `/servers/${serverId}/os-volume_attachments`, { headers: mv, signal })).volumeAttachments;
  }

  /** Asks Nova to attach; the volume goes `attaching` → `in-use` (poll Cinder). */
  async attachVolume(serverId: string, volumeId: string, opts: { device?: string; signal?: AbortSignal } = {}): Promise<{ device: string | null; volumeId: string; serverId: string }> {
    const res = await this.session.json<{ volumeAttachment: { device: string | null; volumeId: string; serverId: string } }>(
      'compute', 'POST', `/servers/${serverId}/os-volume_attachments`,
      { headers: mv, json: { volumeAttachment: { volumeId, ...(opts.device ? { device: opts.device } : {}) } }, signal: opts.signal },
    );
    return res.volumeAttachment;
  }

  /** Asks Nova to detach; the volume goes `detaching` → `available` (poll Cinder). */
  async detachVolume(serverId: string, volumeId: string, signal?: AbortSignal): Promise<void> {
    await this.session.request('compute', 'DELETE', `/servers/${serverId}/os-volume_attachments/${volumeId}`, { headers: mv, expect: 'none', signal });
  }
}
