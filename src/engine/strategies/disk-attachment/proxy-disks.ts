// The OpenStack side of "disk attachment to a proxy VM": for each Cinder volume of an instance a
// snapshot (forced: the volume is in use), a temporary volume from it, attached to the proxy
// server the data mover runs in, and the file (nfs driver) or device (/dev/disk/by-id) where
// the proxy sees it. Everything created is named `strongbox-<taskId>` and carries the metadata
// tag `strongbox-task=<taskId>`, so the janitor can find what a crashed mover left behind.
// `cleanup()` undoes whatever was done, whatever state it stopped in; it never takes the task's
// abort signal (a cancelled task must still clean up) and tries every step even if one fails.
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  byIdCandidates, isNfsConnectionInfo, nfsFilePath, OpenStackError, type ServiceClients, type WaitOptions,
} from '../../../openstack/index.ts';

export const TASK_TAG = 'strongbox-task';
/** A snapshot kept after its backup ("keep the last snapshot"); the value is the source volume ID. */
export const KEPT_TAG = 'strongbox-kept-for';
export const resourceName = (taskId: string) => `strongbox-${taskId}`;

export type ProxyDisk = {
  sourceVolumeId: string;
  sizeGiB: number;
  snapshotId?: string;
  volumeId?: string;
  attachRequested?: boolean;
  /** Where the proxy reads the temporary volume. */
  path?: string;
};

export type ProxyDiskOptions = {
  proxyServerId: string;
  /** Most volumes attached to the proxy at once (NodeConfiguration.attachmentLimit). */
  attachmentLimit: number;
  wait?: Omit<WaitOptions, 'signal'>;
  /** Where block devices appear when the driver is not file based. */
  byIdRoot?: string;
};

export class ProxyDisks {
  readonly disks: ProxyDisk[] = [];

  constructor(
    private readonly os: ServiceClients,
    private readonly taskId: string,
    private readonly opts: ProxyDiskOptions,
  ) {}

  private get tag() {
    return { [TASK_TAG]: this.taskId };
  }

  /** Snapshot then temporary volume, per source volume, one after the other. */
  async snapshot(sources: { id: string; sizeGiB: number }[], signal: AbortSignal): Promise<void> {
    for (const s of sources) {
      const disk: ProxyDisk = { sourceVolumeId: s.id, sizeGiB: s.sizeGiB };
      this.disks.push(disk);
      const snap = await this.os.cinder.createSnapshot({ volume_id: s.id, force: true, name: resourceName(this.taskId), metadata: this.tag }, signal);
      disk.snapshotId = snap.id;
      await this.os.cinder.waitForSnapshot(snap.id, { ...this.opts.wait, signal });
      const vol = await this.os.cinder.createVolume({ size: s.sizeGiB, snapshot_id: snap.id, name: resourceName(this.taskId), metadata: this.tag }, signal);
      disk.volumeId = vol.id;
      await this.os.cinder.waitForVolume(vol.id, ['available'], { ...this.opts.wait, signal });
    }
  }

  /** Attaches every temporary volume to the proxy, waiting for room under the attachment limit. */
  async attach(signal: AbortSignal): Promise<void> {
    for (const disk of this.disks) {
      await this.waitForRoom(signal);
      disk.attachRequested = true;
      await this.os.nova.attachVolume(this.opts.proxyServerId, disk.volumeId!, { signal });
      await this.os.cinder.waitForVolume(disk.volumeId!, ['in-use'], { ...this.opts.wait, signal });
      disk.path = await this.locate(disk.volumeId!, signal);
    }
  }

  private async waitForRoom(signal: AbortSignal): Promise<void> {
    // Other tasks on the same proxy count too: ask Nova, not our own bookkeeping.
    for (;;) {
      const attached = await this.os.nova.listVolumeAttachments(this.opts.proxyServerId, signal);
      if (attached.length < this.opts.attachmentLimit) return;
      await sleep(this.opts.wait?.intervalMs ?? 2000, undefined, { signal });
    }
  }

  private async locate(volumeId: string, signal: AbortSignal): Promise<string> {
    const [attachment] = await this.os.cinder.listAttachments({ volumeId, signal });
    const ci = attachment?.connection_info;
    if (isNfsConnectionInfo(ci)) {
      const file = nfsFilePath(ci);
      if (existsSync(file)) return file;
      throw new Error(`volume ${volumeId} is attached but its file ${file} is not visible on this proxy (is the NFS export mounted here?)`);
    }
    const device = byIdCandidates(volumeId, this.opts.byIdRoot).find((p) => existsSync(p));
    if (device) return device;
    throw new Error(`volume ${volumeId} is attached but no device for it appeared under ${this.opts.byIdRoot ?? '/dev/disk/by-id'}`);
  }

  /** Detaches one volume from the proxy; false when Nova refused or the detach did not finish. */
  private async detachOne(volumeId: string): Promise<boolean> {
    try {
      await this.os.nova.detachVolume(this.opts.proxyServerId, volumeId);
      await this.os.cinder.waitForVolume(volumeId, ['available'], { ...this.opts.wait });
      return true;
    } catch (e) {
      return e instanceof OpenStackError && e.notFound;
    }
  }

  /** Detaches every attached volume and keeps them (a restore's new volumes). */
  async detachAll(): Promise<Error[]> {
    const errors: Error[] = [];
    for (const disk of this.disks) {
      if (!disk.volumeId || !disk.attachRequested) continue;
      if (await this.detachOne(disk.volumeId)) disk.attachRequested = false;
      else errors.push(new Error(`volume ${disk.volumeId} did not detach from the proxy ${this.opts.proxyServerId}`));
    }
    return errors;
  }

  /**
   * "Keep the last snapshot or delete it, as configured", after a successful backup and before
   * `cleanup()`. With `keep`, each snapshot of this backup becomes its volume's kept snapshot —
   * its metadata replaced by `strongbox-kept-for=<volume>`, so it is no longer the task's and the
   * janitor leaves it alone — and `cleanup()` will not delete it. Either way the volumes'
   * previously kept snapshots are deleted (with the setting off, nothing stays behind).
   */
  async settleSnapshots(keep: boolean): Promise<Error[]> {
    const errors: Error[] = [];
    const kept = new Set<string>();
    const sources = new Set(this.disks.filter((d) => d.snapshotId).map((d) => d.sourceVolumeId));
    for (const disk of this.disks) {
      if (!disk.snapshotId || !keep) continue;
      try {
        await this.os.cinder.setSnapshotMetadata(disk.snapshotId, { [KEPT_TAG]: disk.sourceVolumeId });
        kept.add(disk.snapshotId);
        disk.snapshotId = undefined;
      } catch (e) {
        errors.push(e as Error);
      }
    }
    if (sources.size === 0) return errors;
    try {
      const previous = (await this.os.cinder.listSnapshots({ allTenants: true }))
        .filter((s) => sources.has(s.metadata?.[KEPT_TAG] ?? '') && !kept.has(s.id) && s.status !== 'deleting');
      for (const s of previous) {
        try {
          await this.os.cinder.deleteSnapshot(s.id);
          await this.os.cinder.waitForSnapshotGone(s.id, { ...this.opts.wait });
        } catch (e) {
          if (!(e instanceof OpenStackError && e.notFound)) errors.push(e as Error);
        }
      }
    } catch (e) {
      errors.push(e as Error);
    }
    return errors;
  }

  /** Detach, delete the temporary volumes, delete the snapshots. Returns the errors it met. */
  async cleanup(): Promise<Error[]> {
    const errors: Error[] = [];
    const step = async (f: () => Promise<unknown>) => {
      try {
        await f();
      } catch (e) {
        if (!(e instanceof OpenStackError && e.notFound)) errors.push(e as Error);
      }
    };
    const wait = { ...this.opts.wait };
    for (const disk of [...this.disks].reverse()) {
      if (disk.volumeId) {
        const volumeId = disk.volumeId;
        // A detach refused (stuck `attaching`) or stuck: force the delete, which drops the attachment.
        const detached = !disk.attachRequested || (await this.detachOne(volumeId));
        await step(async () => {
          if (detached) await this.os.cinder.deleteVolume(volumeId);
          else await this.os.cinder.forceDeleteVolume(volumeId);
          await this.os.cinder.waitForVolumeGone(volumeId, wait);
        });
      }
      if (disk.snapshotId) {
        const snapshotId = disk.snapshotId;
        await step(async () => {
          await this.os.cinder.deleteSnapshot(snapshotId);
          await this.os.cinder.waitForSnapshotGone(snapshotId, wait);
        });
      }
    }
    return errors;
  }
}
