// The RBD images one backup reads, and the Ceph clients it reads them through (one per storage
// provider). Each source takes a new snapshot — at open (RbdDiskSource.open), or, for sources added
// prepared, in snapshotSteps() inside the instance's one point in time (ssh/consistent-point.ts)
// followed by expose(). They become the bases of the next backup only on
// commit(), once the backup record naming them is durable. close() removes uncommitted ones, so the
// older bases stay. Used by disk attachment (Ceph-backed Cinder volumes) and SSH transfer
// (RBD-backed Nova disks).
import type { StorageProvider } from '../../../db/entities/index.ts';
import type { SecretBox } from '../../../db/secrets.ts';
import { CephClient } from './ceph-client.ts';
import type { RbdDiskSource } from './rbd-source.ts';

export class RbdSnapshotSet {
  /** By the caller's key for a disk (volume ID, disk target). */
  readonly sources = new Map<string, RbdDiskSource>();
  private readonly clients = new Map<string, CephClient>();

  /** The Ceph client of `provider`, opened once per backup. */
  protected async client(provider: StorageProvider, secrets: SecretBox): Promise<CephClient> {
    let client = this.clients.get(provider.id);
    if (!client) {
      client = await CephClient.open({
        user: provider.cephUser, keyring: secrets.open(provider.keyring), config: secrets.open(provider.cephConf),
        poolStrategy: provider.poolStrategy, pools: provider.pools,
      });
      this.clients.set(provider.id, client);
    }
    return client;
  }

  /** One snapshot step per source, for atOnePoint (sources added by RbdDiskSource.prepare). */
  snapshotSteps(): Array<() => Promise<void>> {
    return [...this.sources.values()].map((s) => () => s.snapshot());
  }

  /** After the snapshots: every source's size and parent extents. */
  async expose(): Promise<void> {
    for (const s of this.sources.values()) await s.expose();
  }

  /**
   * The record is durable: each new snapshot becomes the base (older ones go). Every source is
   * committed even if one fails (a leftover older snapshot is only space, removed by the next
   * commit); the failures are returned.
   */
  async commit(): Promise<Error[]> {
    const errors: Error[] = [];
    for (const s of this.sources.values()) await s.commit().catch((e: Error) => errors.push(e));
    return errors;
  }

  /** Closes every source (uncommitted: its new snapshot goes), then the Ceph clients. */
  async close() {
    for (const s of this.sources.values()) await s.close().catch(() => {});
    for (const c of this.clients.values()) await c.close().catch(() => {});
    this.clients.clear();
  }
}
