// Neutron (network v2.0): networks, ports (list by device, create, delete), security groups.
import { nextMarker, type Session } from './session.ts';

type Link = { href: string; rel: string };

export type NeutronNetwork = {
  id: string;
  name: string;
  project_id: string;
  tenant_id?: string;
  shared: boolean;
  status: string;
  admin_state_up: boolean;
  subnets: string[];
  'router:external'?: boolean;
  mtu?: number;
};

export type NeutronPort = {
  id: string;
  name: string;
  network_id: string;
  project_id: string;
  device_id: string;
  device_owner: string;
  mac_address: string;
  status: string;
  fixed_ips: { subnet_id: string; ip_address: string }[];
  security_groups: string[];
};

export type NeutronSecurityGroup = { id: string; name: string; project_id: string; description: string };

export class NeutronClient {
  constructor(readonly session: Session) {}

  async listNetworks(signal?: AbortSignal): Promise<NeutronNetwork[]> {
    return this.#paged<NeutronNetwork>('/v2.0/networks', 'networks', {}, signal);
  }

  async listPorts(filter: { deviceId?: string; networkId?: string; projectId?: string } = {}, signal?: AbortSignal): Promise<NeutronPort[]> {
    return this.#paged<NeutronPort>('/v2.0/ports', 'ports', { device_id: filter.deviceId, network_id: filter.networkId, project_id: filter.projectId }, signal);
  }

  async createPort(port: { network_id: string; name?: string; project_id?: string; fixed_ips?: { subnet_id?: string; ip_address?: string }[]; security_groups?: string[] }, signal?: AbortSignal): Promise<NeutronPort> {
    return (await this.session.json<{ port: NeutronPort }>('network', 'POST', '/v2.0/ports', { json: { port }, signal })).port;
  }

  async deletePort(id: string, signal?: AbortSignal): Promise<void> {
    await this.session.request('network', 'DELETE', `/v2.0/ports/${id}`, { expect: 'none', signal });
  }

  async listSecurityGroups(filter: { projectId?: string } = {}, signal?: AbortSignal): Promise<NeutronSecurityGroup[]> {
    return this.#paged<NeutronSecurityGroup>('/v2.0/security-groups', 'security_groups', { project_id: filter.projectId }, signal);
  }

  async #paged<T extends { id: string }>(path: string, key: string, query: Record<string, string | undefined>, signal?: AbortSignal): Promise<T[]> {
    const out: T[] = [];
    let marker: string | undefined;
    for (;;) {
      const page = await this.session.json<Record<string, unknown>>('network', 'GET', path, { query: { ...query, limit: 1000, marker }, signal });
      const items = page[key] as T[];
      out.push(...items);
      marker = nextMarker(page[`${key}_links`] as Link[] | undefined);
      if (!marker || items.length === 0) return out;
    }
  }
}
