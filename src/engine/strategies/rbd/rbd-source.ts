// Ceph RBD disk source: snapshot `strongbox-<backupId>`, read it through librbd (`rbd` CLI), keep
// it as the base of the next incremental.
// - full: `rbd export-diff img@snap -` (no --from-snap: every allocated extent since creation,
//   parent data of clones included) — sparse, unlike `rbd export`, which streams the holes too;
// - incremental: `rbd export-diff --from-snap <parent> img@snap -`.
// The diff stream is parsed as it arrives and zero-detected per block: RBD over-reports writes that
// create or extend an object (from the object's old end to the end of the write).
import { StrategyError, isZero, type DataExtent, type DiskSource, type Extent } from '../disk-source.ts';
import { exitCode, type CephClient } from './ceph-client.ts';
import { parseExportDiff } from './export-diff.ts';

export interface RbdBackupOptions {
  pool: string;
  image: string;
  /** Names the snapshot `strongbox-<backupId>`; [A-Za-z0-9_-] only. */
  backupId: string;
  /** checkpoint of the parent backup of this image; absent → full. */
  parent?: string | null;
  maxExtent?: number;
  /** Zero detection granularity. */
  zeroBlock?: number;
}

interface Checkpoint {
  snap: string;
}

export const SNAP_PREFIX = 'strongbox-';

export class RbdDiskSource implements DiskSource {
  readonly name: string;
  readonly mode: 'full' | 'incremental';
  bytesRead = 0;
  /** Bytes the diff reported as written but that were all zeros (not stored). */
  bytesZeroDetected = 0;
  checkpoint = '';
  private state: 'open' | 'committed' | 'closed' = 'open';

  private constructor(
    private client: CephClient,
    private o: RbdBackupOptions,
    readonly snap: string,
    private parentSnap: string | null,
    readonly size: number,
    readonly fallbackReason: string | null,
  ) {
    this.name = `${o.pool}/${o.image}`;
    this.mode = parentSnap ? 'incremental' : 'full';
  }

  static async open(client: CephClient, o: RbdBackupOptions): Promise<RbdDiskSource> {
    if (!/^[A-Za-z0-9_-]+$/.test(o.backupId)) throw new StrategyError('INVALID_ARGUMENT', 'backupId must be [A-Za-z0-9_-]');
    const spec = `${o.pool}/${o.image}`;
    const snaps = await client.snapshots(o.pool, o.image).catch((e: unknown) => {
      throw new StrategyError('IMAGE_NOT_FOUND', `cannot list snapshots of ${spec}: ${(e as Error).message}`);
    });
    let parentSnap: string | null = null;
    let fallbackReason: string | null = null;
    if (o.parent) {
      const wanted = (JSON.parse(o.parent) as Checkpoint).snap;
      if (snaps.some((s) => s.name === wanted)) parentSnap = wanted;
      else fallbackReason = `base snapshot ${spec}@${wanted} no longer exists; full read instead of incremental`;
    }
    const snap = `${SNAP_PREFIX}${o.backupId}`;
    await client.run('rbd', ['snap', 'create', `${spec}@${snap}`], 'SNAPSHOT_FAILED');
    try {
      const info = await client.json<{ size: number }>('rbd', ['info', `${spec}@${snap}`]);
      return new RbdDiskSource(client, o, snap, parentSnap, info.size, fallbackReason);
    } catch (e) {
      await client.run('rbd', ['snap', 'rm', `${spec}@${snap}`]).catch(() => {});
      throw e;
    }
  }

  private get spec() {
    return `${this.o.pool}/${this.o.image}`;
  }

  private async diffExtents(from: string | null): Promise<Extent[]> {
    const args = ['diff', `${this.spec}@${this.snap}`];
    if (from) args.push('--from-snap', from);
    const rows = await this.client.json<Array<{ offset: number; length: number; exists: string | boolean }>>('rbd', args);
    return rows.filter((r) => from || String(r.exists) === 'true').map(({ offset, length }) => ({ offset, length }));
  }

  async *allocatedExtents(): AsyncIterable<Extent> {
    yield* await this.diffExtents(null);
  }

  changedExtents(): AsyncIterable<Extent> | null {
    if (!this.parentSnap) return null;
    const self = this;
    return (async function* () {
      yield* await self.diffExtents(self.parentSnap);
    })();
  }

  async *extents(): AsyncIterable<DataExtent> {
    const max = this.o.maxExtent ?? 4 * 1024 * 1024;
    const block = this.o.zeroBlock ?? 64 * 1024;
    const args = ['export-diff', '--no-progress', `${this.spec}@${this.snap}`, '-'];
    if (this.parentSnap) args.splice(1, 0, '--from-snap', this.parentSnap);
    const child = this.client.spawn('rbd', args);
    child.stdin.end();
    const stderr: Buffer[] = [];
    child.stderr.on('data', (d: Buffer) => stderr.push(d));
    const exited = exitCode(child);
    const incremental = this.mode === 'incremental';
    // Pending run of same-kind blocks, flushed when it changes kind, breaks contiguity or is full.
    let run: { offset: number; length: number; parts: Buffer[] | null } | null = null;
    const flush = (): DataExtent | null => {
      const r = run;
      run = null;
      if (!r || (!incremental && r.parts === null)) return null;
      return { offset: r.offset, length: r.length, data: r.parts ? Buffer.concat(r.parts) : null };
    };
    const add = function* (offset: number, length: number, data: Buffer | null): Generator<DataExtent> {
      if (run && (run.offset + run.length !== offset || (run.parts === null) !== (data === null) || run.length + length > max)) {
        const out = flush();
        if (out) yield out;
      }
      if (!run) run = { offset, length: 0, parts: data ? [] : null };
      run.length += length;
      if (data) run.parts!.push(data);
    };
    let finished = false;
    try {
      for await (const rec of parseExportDiff(child.stdout, max)) {
        if (rec.type === 'write') {
          this.bytesRead += rec.length;
          for (let i = 0; i < rec.length; i += block) {
            const piece = rec.data.subarray(i, Math.min(rec.length, i + block));
            const zero = isZero(piece);
            if (zero) this.bytesZeroDetected += piece.length;
            yield* add(rec.offset + i, piece.length, zero ? null : piece);
          }
        } else if (rec.type === 'zero') {
          yield* add(rec.offset, rec.length, null);
        }
      }
      const last = flush();
      if (last) yield last;
      const code = await exited;
      if (code !== 0) {
        throw new StrategyError('TRANSFER_FAILED', `rbd export-diff of ${this.spec}@${this.snap} exited ${code}: ${Buffer.concat(stderr).toString().trim().slice(-500)}`);
      }
      finished = true;
    } finally {
      // Consumer stopped early or the stream broke: do not leave rbd blocked on a full pipe.
      if (!finished && child.exitCode === null) child.kill('SIGKILL');
    }
  }

  async commit(): Promise<void> {
    if (this.state !== 'open') throw new StrategyError('INVALID_STATE', `${this.name} already ${this.state}`);
    // Keep only this snapshot as the base of the next incremental.
    for (const s of await this.client.snapshots(this.o.pool, this.o.image)) {
      if (s.name.startsWith(SNAP_PREFIX) && s.name !== this.snap) {
        await this.client.run('rbd', ['snap', 'rm', `${this.spec}@${s.name}`], 'SNAPSHOT_CLEANUP_FAILED');
      }
    }
    this.checkpoint = JSON.stringify({ snap: this.snap } satisfies Checkpoint);
    this.state = 'committed';
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    const wasOpen = this.state === 'open';
    this.state = 'closed';
    // Not stored: drop the new snapshot, the parent stays the base of the next incremental.
    if (wasOpen) await this.client.run('rbd', ['snap', 'rm', `${this.spec}@${this.snap}`], 'SNAPSHOT_CLEANUP_FAILED');
  }
}
