// RBD-backed disks of a Nova domain in SSH transfer: with Nova's `images_type=rbd` the root and
// ephemeral disks are RBD images (`<pool>/<uuid>_disk`, `<uuid>_disk.eph<N>`), and attached Cinder
// RBD volumes are `<pool>/volume-<id>`; QEMU reads them from Ceph, there is no file to read on the
// hypervisor. The data mover reads them from the cluster itself, with the storage provider of the
// instance's zone (AvailabilityZone.storageProvider), exactly as disk attachment reads Ceph-backed
// volumes (RbdDiskSource): snapshot `strongbox-<backupId>` per image, the full read or the
// zero-detected `rbd export-diff` from the parent's snapshot. The hypervisor is only asked which
// images the domain uses (`virsh dumpxml`). New snapshots are kept only once the backup record
// naming them is durable (commit); otherwise close() removes them and the parent's stay the base.
import type { EntityManager } from '@mikro-orm/postgresql';
import { AvailabilityZone, type Instance } from '../../../db/entities/index.ts';
import type { SecretBox } from '../../../db/secrets.ts';
import { CephClient } from '../rbd/ceph-client.ts';
import { RbdDiskSource } from '../rbd/rbd-source.ts';
import type { RbdDomainDisk } from './libvirt.ts';

export class NovaRbdDisks {
  /** By disk target ("vda"), in the order given. */
  readonly sources = new Map<string, RbdDiskSource>();
  /** Disks that cannot be read, with the reason (no storage provider for the zone). */
  readonly notCovered: string[] = [];
  private client: CephClient | null = null;

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
      self.client = await CephClient.open({
        user: provider.cephUser, keyring: secrets.open(provider.keyring), config: secrets.open(provider.cephConf),
        poolStrategy: provider.poolStrategy, pools: provider.pools,
      });
      for (const d of disks) {
        const checkpoint = parent?.[d.target];
        const base = checkpoint && isRbdCheckpoint(checkpoint) ? checkpoint : null;
        self.sources.set(d.target, await RbdDiskSource.open(self.client, { pool: d.pool, image: d.image, backupId, parent: base }));
      }
      return self;
    } catch (e) {
      await self.close();
      throw e;
    }
  }

  /** The record is durable: each new snapshot becomes the base (older ones go); failures returned. */
  async commit(): Promise<Error[]> {
    const errors: Error[] = [];
    for (const s of this.sources.values()) await s.commit().catch((e: Error) => errors.push(e));
    return errors;
  }

  /** Uncommitted sources lose their new snapshot; then the Ceph client goes. */
  async close() {
    for (const s of this.sources.values()) await s.close().catch(() => {});
    await this.client?.close().catch(() => {});
    this.client = null;
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
