// Cinder volumes on Ceph RBD, read by the disk-attachment strategy straight from the cluster instead
// of through a proxy attachment: a volume whose type maps to a Ceph pool (VolumeType.cephPool) in a
// zone with a storage provider (AvailabilityZone.storageProvider) is the RBD image
// `<pool>/volume-<id>` (the Cinder RBD driver's naming). Its snapshot `strongbox-<backupId>` is kept
// as the base of the next backup, which reads only the `rbd export-diff` from it — kept only once the
// backup record naming it is durable (commit), else removed (close) and the older base stays.
import type { EntityManager } from '@mikro-orm/postgresql';
import { AvailabilityZone, BackupDisk, VolumeType, type Backup, type Cloud } from '../../../db/entities/index.ts';
import type { SecretBox } from '../../../db/secrets.ts';
import { RbdDiskSource } from '../rbd/rbd-source.ts';
import { RbdSnapshotSet } from '../rbd/rbd-snapshot-set.ts';
import type { CapturedDisk } from './instance-metadata.ts';

/** Sources by volume ID. */
export class RbdVolumes extends RbdSnapshotSet {
  /** By volume id: why a volume is not read from Ceph (no pool mapped for its type, no storage provider for its zone). */
  readonly unmapped = new Map<string, string>();

  /**
   * Open an RBD source for every disk on a mapped Ceph pool (others are left to the proxy).
   * `parent` is the backup the changes are relative to (its disks' checkpoints name the base snapshots).
   */
  static async open(em: EntityManager, secrets: SecretBox, cloud: Cloud, disks: CapturedDisk[], backupId: string, parent: Backup | null): Promise<RbdVolumes> {
    const self = new RbdVolumes();
    const pools = new Map((await em.find(VolumeType, { cloud: cloud.id, cephPool: { $ne: null } }, { filters: false })).map((t) => [t.name, t.cephPool!]));
    const zones = pools.size ? await em.find(AvailabilityZone, { cloud: cloud.id, storageProvider: { $ne: null } }, { populate: ['storageProvider'], filters: false }) : [];
    const parentDisks = parent ? await em.find(BackupDisk, { backup: parent.id }, { filters: false }) : [];
    try {
      for (const d of disks) {
        const pool = d.volumeType ? pools.get(d.volumeType) : undefined;
        const provider = zones.find((z) => z.name === d.availabilityZone)?.storageProvider;
        if (!pool || !provider) {
          self.unmapped.set(d.volumeId, !pool
            ? `volume type ${d.volumeType ? `'${d.volumeType}'` : '(none)'} is mapped to no Ceph pool`
            : `zone ${d.availabilityZone ? `'${d.availabilityZone}'` : '(none)'} has no storage provider`);
          continue;
        }
        const client = await self.client(provider, secrets);
        const checkpoint = parentDisks.find((p) => p.volumeExternalId === d.volumeId)?.checkpoint ?? null;
        self.sources.set(d.volumeId, await RbdDiskSource.open(client, { pool, image: `volume-${d.volumeId}`, backupId, parent: checkpoint }));
      }
      return self;
    } catch (e) {
      await self.close();
      throw e;
    }
  }
}
