// Cinder (block storage v3): volumes across tenants with paging, types with extra specs,
// snapshots (force for in-use volumes), volumes from snapshots, attachments. Microversion 3.70
// for volumes (volume_type_id) and 3.27 for the attachments API, as in the samples.
import { OpenStackError } from './errors.ts';
import { nextMarker, volumeVersion, type Session } from './session.ts';
import { waitForGone, waitForStatus, type WaitOptions } from './wait.ts';

export const CINDER_MICROVERSION = '3.70';
export const CINDER_ATTACHMENTS_MICROVERSION = '3.27';
const mv = volumeVersion(CINDER_MICROVERSION);
const mvAttach = volumeVersion(CINDER_ATTACHMENTS_MICROVERSION);

type Link = { href: string; rel: string };

export type CinderVolumeAttachmentRef = {
  attached_at: string | null;
  attachment_id: string;
  device: string | null;
  host_name: string | null;
  id: string;
  server_id: string;
  volume_id: string;
};

export type CinderVolume = {
  id: string;
  name: string | null;
  description: string | null;
  status: string;
  size: number;
  availability_zone: string;
  bootable: 'true' | 'false';
  encrypted: boolean;
  multiattach: boolean;
  attachments: CinderVolumeAttachmentRef[];
  metadata: Record<string, string>;
  snapshot_id: string | null;
  source_volid: string | null;
  volume_type: string | null;
  volume_type_id?: string;
  'os-vol-tenant-attr:tenant_id': string;
  'os-vol-host-attr:host'?: string | null;
  user_id: string;
  created_at: string;
  updated_at: string | null;
};

export type CinderVolumeType = {
  id: string;
  name: string;
  description: string | null;
  is_public: boolean;
  extra_specs: Record<string, string>;
  qos_specs_id: string | null;
};

export type CinderSnapshot = {
  id: string;
  name: string | null;
  description: string | null;
  status: string;
  size: number;
  volume_id: string;
  metadata: Record<string, string>;
  created_at: string;
  updated_at: string | null;
  'os-extended-snapshot-attributes:progress'?: string;
  'os-extended-snapshot-attributes:project_id'?: string;
};

/** What the host sees for a file-backed driver (NFS and the like). */
export type NfsConnectionInfo = {
  driver_volume_type: 'nfs';
  export: string;
  mount_point_base: string;
  name: string;
  format?: string;
  access_mode?: string;
  attachment_id?: string;
};

export type CinderAttachment = {
  id: string;
  status: string;
  instance: string | null;
  volume_id: string;
  attach_mode: string;
  attached_at: string | null;
  detached_at: string | null;
  connection_info: ({ driver_volume_type: string } & Record<string, unknown>) | null;
};

export type VolumeCreate = {
  size: number;
  name?: string;
  description?: string;
  snapshot_id?: string;
  source_volid?: string;
  imageRef?: string;
  volume_type?: string;
  availability_zone?: string;
  metadata?: Record<string, string>;
};

export class CinderClient {
  constructor(readonly session: Session) {}

  async listVolumes(opts: { allTenants?: boolean; projectId?: string; pageSize?: number; signal?: AbortSignal } = {}): Promise<CinderVolume[]> {
    const out: CinderVolume[] = [];
    let marker: string | undefined;
    for (;;) {
      const page = await this.session.json<{ volumes: CinderVolume[]; volumes_links?: Link[] }>('volumev3', 'GET', '/volumes/detail', {
        headers: mv,
        signal: opts.signal,
        query: { all_tenants: opts.allTenants ? 1 : undefined, project_id: opts.projectId, limit: opts.pageSize ?? 1000, marker },
      });
      out.push(...page.volumes);
      marker = nextMarker(page.volumes_links);
      if (!marker || page.volumes.length === 0) return out;
    }
  }

  async getVolume(id: string, signal?: AbortSignal): Promise<CinderVolume> {
    return (await this.session.json<{ volume: CinderVolume }>('volumev3', 'GET', `/volumes/${id}`, { headers: mv, signal })).volume;
  }

  async createVolume(volume: VolumeCreate, signal?: AbortSignal): Promise<CinderVolume> {
    return (await this.session.json<{ volume: CinderVolume }>('volumev3', 'POST', '/volumes', { headers: mv, json: { volume }, signal })).volume;
  }

  async deleteVolume(id: string, signal?: AbortSignal): Promise<void> {
    await this.session.request('volumev3', 'DELETE', `/volumes/${id}`, { headers: mv, expect: 'none', signal });
  }

  /** Admin: deletes a volume whatever its status (cleanup of a stuck attach). */
  async forceDeleteVolume(id: string, signal?: AbortSignal): Promise<void> {
    await this.session.request('volumev3', 'POST', `/volumes/${id}/action`, { headers: mv, json: { 'os-force_delete': {} }, expect: 'none', signal });
  }

  /** Admin: sets a volume's status (e.g. back to `available` after a failed detach). */
  async resetVolumeStatus(id: string, status: string, signal?: AbortSignal): Promise<void> {
    await this.session.request('volumev3', 'POST', `/volumes/${id}/action`, { headers: mv, json: { 'os-reset_status': { status } }, expect: 'none', signal });
  }

  async waitForVolume(id: string, wanted: string[] = ['available'], opts: WaitOptions = {}): Promise<CinderVolume> {
    return waitForStatus(`volume ${id}`, () => this.getVolume(id, opts.signal), (v) => v.status, wanted, opts);
  }

  async waitForVolumeGone(id: string, opts: WaitOptions = {}): Promise<void> {
    await waitForGone(`volume ${id} deletion`, () => this.#gone(() => this.getVolume(id, opts.signal)), opts);
  }

  /** Every volume type, public and private, with its extra specs. */
  async listVolumeTypes(signal?: AbortSignal): Promise<CinderVolumeType[]> {
    return (await this.session.json<{ volume_types: CinderVolumeType[] }>('volumev3', 'GET', '/types', { query: { is_public: 'None' }, signal })).volume_types;
  }

  async getExtraSpecs(typeId: string, signal?: AbortSignal): Promise<Record<string, string>> {
    return (await this.session.json<{ extra_specs: Record<string, string> }>('volumev3', 'GET', `/types/${typeId}/extra_specs`, { signal })).extra_specs;
  }

  /** `force: true` snapshots an in-use volume (needed before 3.66, accepted after). */
  async createSnapshot(snapshot: { volume_id: string; force?: boolean; name?: string; description?: string; metadata?: Record<string, string> }, signal?: AbortSignal): Promise<CinderSnapshot> {
    return (await this.session.json<{ snapshot: CinderSnapshot }>('volumev3', 'POST', '/snapshots', { headers: mv, json: { snapshot }, signal })).snapshot;
  }

  async getSnapshot(id: string, signal?: AbortSignal): Promise<CinderSnapshot> {
    return (await this.session.json<{ snapshot: CinderSnapshot }>('volumev3', 'GET', `/snapshots/${id}`, { headers: mv, signal })).snapshot;
  }

  async listSnapshots(opts: { allTenants?: boolean; signal?: AbortSignal } = {}): Promise<CinderSnapshot[]> {
    return (await this.session.json<{ snapshots: CinderSnapshot[] }>('volumev3', 'GET', '/snapshots/detail', {
      headers: mv, signal: opts.signal, query: { all_tenants: opts.allTenants ? 1 : undefined },
    })).snapshots;
  }

  /** Replaces the snapshot's metadata. */
  async setSnapshotMetadata(id: string, metadata: Record<string, string>, signal?: AbortSignal): Promise<Record<string, string>> {
    return (await this.session.json<{ metadata: Record<string, string> }>('volumev3', 'PUT', `/snapshots/${id}/metadata`, { headers: mv, json: { metadata }, signal })).metadata;
  }

  async deleteSnapshot(id: string, signal?: AbortSignal): Promise<void> {
    await this.session.request('volumev3', 'DELETE', `/snapshots/${id}`, { headers: mv, expect: 'none', signal });
  }

  async waitForSnapshot(id: string, opts: WaitOptions = {}): Promise<CinderSnapshot> {
    return waitForStatus(`snapshot ${id}`, () => this.getSnapshot(id, opts.signal), (s) => s.status, ['available'], opts);
  }

  async waitForSnapshotGone(id: string, opts: WaitOptions = {}): Promise<void> {
    await waitForGone(`snapshot ${id} deletion`, () => this.#gone(() => this.getSnapshot(id, opts.signal)), opts);
  }

  /** Attachments (3.27+), filtered by volume or server. */
  async listAttachments(opts: { volumeId?: string; instanceId?: string; allTenants?: boolean; signal?: AbortSignal } = {}): Promise<CinderAttachment[]> {
    return (await this.session.json<{ attachments: CinderAttachment[] }>('volumev3', 'GET', '/attachments/detail', {
      headers: mvAttach,
      signal: opts.signal,
      query: { volume_id: opts.volumeId, instance_id: opts.instanceId, all_tenants: opts.allTenants ? 1 : undefined },
    })).attachments;
  }

  async getAttachment(id: string, signal?: AbortSignal): Promise<CinderAttachment> {
    return (await this.session.json<{ attachment: CinderAttachment }>('volumev3', 'GET', `/attachments/${id}`, { headers: mvAttach, signal })).attachment;
  }

  async #gone(get: () => Promise<unknown>): Promise<boolean> {
    try {
      await get();
      return false;
    } catch (err) {
      if (err instanceof OpenStackError && err.notFound) return true;
      throw err;
    }
  }
}
