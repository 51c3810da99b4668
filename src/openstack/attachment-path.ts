// Where a backup proxy finds an attached volume: for file-backed drivers (connection_info
// `driver_volume_type: nfs`) a file under the driver's mount of the export; for block drivers
// a device under /dev/disk/by-id named after the volume ID (virtio serial = its first 20 chars).
import { createHash } from 'node:crypto';
import path from 'node:path';
import type { NfsConnectionInfo } from './cinder.ts';

export function isNfsConnectionInfo(ci: unknown): ci is NfsConnectionInfo {
  const c = ci as Partial<NfsConnectionInfo> | null;
  return !!c && c.driver_volume_type === 'nfs' && typeof c.export === 'string' && typeof c.mount_point_base === 'string' && typeof c.name === 'string';
}

/** `<mount_point_base>/<md5 of the export>/<name>`, as os-brick mounts NFS shares. */
export function nfsFilePath(ci: NfsConnectionInfo): string {
  const hash = createHash('md5').update(ci.export).digest('hex');
  return path.join(ci.mount_point_base, hash, ci.name);
}

/** Names a block device of this volume may have under a by-id folder. */
export function byIdCandidates(volumeId: string, root = '/dev/disk/by-id'): string[] {
  const serial = volumeId.slice(0, 20);
  return [`virtio-${serial}`, `scsi-0QEMU_QEMU_HARDDISK_${serial}`, `scsi-0QEMU_QEMU_HARDDISK_${volumeId}`, `wwn-${volumeId}`]
    .map((n) => path.join(root, n));
}
