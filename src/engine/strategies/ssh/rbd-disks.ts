// RBD-backed disks of a Nova domain in SSH transfer: with Nova's `images_type=rbd` the root and
// ephemeral disks are RBD images (`<pool>/<uuid>_disk`, `<uuid>_disk.eph<N>`), and attached Cinder
// RBD volumes are `<pool>/volume-<id>`; QEMU reads them from Ceph, there is no file to read on the
// hypervisor. The data mover reads them from the cluster itself, with the storage provider of the
// instance's zone (AvailabilityZone.storageProvider), exactly as disk attachment reads Ceph-backed
// volumes (RbdDiskSource): snapshot `strongbox-<backupId>` per image, the full read or the
// zero-detected `rbd export-diff` from the parent's snapshot. The hypervisor is only asked which
// images the domain uses (`virsh dumpxml`). open() takes no snapshot yet: backup.ts takes them
// (snapshotSteps) at the instance's one point in time with its file disks (consistent-point.ts). New snapshots are kept only once the backup record
// naming them is durable (commit); otherwise close() removes them and the parent's stay the base.
import type { EntityManager } from '@mikro-orm/postgresql';
import { AvailabilityZone, type Instance } from '../../../db/entities/index.ts';
import type { SecretBox } from '../../../db/secrets.ts';
import { RbdDiskSource } from '../rbd/rbd-source.ts';
import { RbdSnapshotSet } from '../rbd/rbd-snapshot-set.ts';
import type { RbdDomainDisk } from './libvirt.ts';

/** Sources by disk target ("vda"), in the order given. */
export class NovaRbdDisks extends RbdSnapshotSet {
  /** Disks that cannot be read, with the reason (no storage provider for the zone). */
  readonly notCovered: string[] = [];

  /** `parent`: the parent backup's checkpoints by disk target (an RBD one names the base snapshot). */
  static async open(
    em: EntityManager, secrets: SecretBox, instance: Instance, disks: RbdDomainDisk[], backupId: string, parent: Record<string, string> | null,
  ): Promise<NovaRbdDisks> {
    const self = new NovaRbdDisks();
    if (disks.length === 0) return self;
    const zone = instance.zone ? await em.findOne(AvailabilityZone, instance.zone.id, { populate: ['storageProvider'], filters: false }) : null;
    const provider = zone?.storageProvider;
    if (!provider) {
      const why = `zone ${zone ? `'${zone.name}'` : '(none)'} has no Ceph storage provider`;
      for (const d of disks) self.notCovered.push(`RBD disk ${d.target} (${d.pool}/${d.image}): ${why}`);
      return self;
    }
    try {
      const client = await self.client(provider, secrets);
      for (const d of disks) {
        const checkpoint = parent?.[d.target];
        const base = checkpoint && isRbdCheckpoint(checkpoint) ? checkpoint : null;
        self.sources.set(d.target, await RbdDiskSource.prepare(client, { pool: d.pool, image: d.image, backupId, parent: base }));
      }
      return self;
    } catch (e) {
      await self.close();
      throw e;
    }
  }
}

/** An RBD checkpoint (`{"snap": …}`), not a libvirt one (a disk moved from file to RBD reads in full). */
function isRbdCheckpoint(s: string): boolean {
  try {
    return typeof (JSON.parse(s) as { snap?: unknown }).snap === 'string';
  } catch {
    return false;
  }
}
