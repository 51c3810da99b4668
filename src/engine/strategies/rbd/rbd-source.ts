// Ceph RBD disk source: snapshot `strongbox-<backupId>`, read it through librbd (`rbd` CLI), keep
// it as the base of the next incremental.
// - full: `rbd export-diff img@snap -` (no --from-snap: every allocated extent since creation,
//   parent data of clones included) — sparse, unlike `rbd export`, which streams the holes too;
// - incremental: `rbd export-diff --from-snap <parent> img@snap -`.
// The diff stream is parsed as it arrives and zero-detected per block: RBD over-reports writes that
// create or extend an object (from the object's old end to the end of the write). A zero block
// outside what the parent snapshot had allocated is no change at all and is dropped; a zero block
// inside it is a real write of zeros and kept as a hole.
// Random reads (the repository's `read`) go through librbd too: qemu-nbd with QEMU's rbd driver,
// on a unix socket in the client's private folder.
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { StrategyError, isZero, overlaps, type DataExtent, type Extent, type StrategyDiskSource } from '../disk-source.ts';
import { NbdClient } from '../ssh/nbd-client.ts';
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

export class RbdDiskSource implements StrategyDiskSource {
  readonly name: string;
  readonly mode: 'full' | 'incremental';
  bytesRead = 0;
  /** Bytes the diff reported as written but that were all zeros (not stored). */
  bytesZeroDetected = 0;
  readonly checkpoint: string;
  /** Of the snapshot, known from expose(). */
  size = 0;
  /** prepared: no snapshot yet (snapshot() takes it); open: this backup's snapshot exists. */
  private state: 'prepared' | 'open' | 'committed' | 'closed' = 'prepared';
  /** Extents the parent snapshot had allocated (sorted); zeros outside them are not changes. */
  private parentAllocated: Extent[] = [];
  private nbd: Promise<{ client: NbdClient; server: ChildProcess }> | null = null;

  private constructor(
    private client: CephClient,
    private o: RbdBackupOptions,
    readonly snap: string,
    private parentSnap: string | null,
    readonly fallbackReason: string | null,
  ) {
    this.name = `${o.pool}/${o.image}`;
    this.mode = parentSnap ? 'incremental' : 'full';
    this.checkpoint = JSON.stringify({ snap } satisfies Checkpoint);
  }

  /** prepare(), snapshot() and expose() at once; on failure the new snapshot goes. */
  static async open(client: CephClient, o: RbdBackupOptions): Promise<RbdDiskSource> {
    const source = await RbdDiskSource.prepare(client, o);
    try {
      await source.snapshot();
      await source.expose();
      return source;
    } catch (e) {
      await source.close().catch(() => {});
      throw e;
    }
  }

  /**
   * Everything before the snapshot: the image's snapshots listed, the parent's base found. Then
   * snapshot() (inside an instance's atOnePoint window, see ssh/consistent-point.ts) and expose().
   */
  static async prepare(client: CephClient, o: RbdBackupOptions): Promise<RbdDiskSource> {
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
    return new RbdDiskSource(client, o, `${SNAP_PREFIX}${o.backupId}`, parentSnap, fallbackReason);
  }

  /** The point in time: `rbd snap create` (instant, copy-on-write). */
  async snapshot(): Promise<void> {
    if (this.state !== 'prepared') throw new StrategyError('INVALID_STATE', `${this.name}: snapshot() once, after prepare()`);
    await this.client.run('rbd', ['snap', 'create', '--no-progress', `${this.spec}@${this.snap}`], 'SNAPSHOT_FAILED');
    this.state = 'open';
  }

  /** After the snapshot: its size, and what the parent's snapshot had allocated. */
  async expose(): Promise<void> {
    if (this.state !== 'open') throw new StrategyError('INVALID_STATE', `${this.name}: expose() after snapshot()`);
    this.size = (await this.client.json<{ size: number }>('rbd', ['info', `${this.spec}@${this.snap}`])).size;
    if (this.parentSnap) this.parentAllocated = await this.diffExtents(this.parentSnap, null);
  }

  private get spec() {
    return `${this.o.pool}/${this.o.image}`;
  }

  /** `rbd diff` of `at` (default: this snapshot), from `from` or from creation. */
  private async diffExtents(at: string | null, from: string | null): Promise<Extent[]> {
    const args = ['diff', `${this.spec}@${at ?? this.snap}`];
    if (from) args.push('--from-snap', from);
    const rows = await this.client.json<Array<{ offset: number; length: number; exists: string | boolean }>>('rbd', args);
    return rows.filter((r) => from || String(r.exists) === 'true').map(({ offset, length }) => ({ offset, length }));
  }

  async allocatedExtents(): Promise<Extent[]> {
    return this.diffExtents(null, null);
  }

  /**
   * The exact changes, zero-detected: a scan of the export-diff stream (its data is read once
   * and dropped). Cheaper alternative without data: `rbd diff --from-snap`, which over-reports.
   */
  async changedExtents(): Promise<Extent[] | null> {
    if (!this.parentSnap) return null;
    const out: Extent[] = [];
    for await (const e of this.extents()) out.push({ offset: e.offset, length: e.length });
    return out;
  }

  /** Random read of the snapshot through librbd (qemu-nbd, started on first use). */
  async read(offset: number, length: number): Promise<Buffer> {
    const n = Math.max(0, Math.min(length, this.size - offset));
    if (n === 0) return Buffer.alloc(0);
    this.nbd ??= this.startNbd();
    const b = await (await this.nbd).client.read(offset, n);
    this.bytesRead += b.length;
    return b;
  }

  private async startNbd() {
    const sock = join(this.client.configDir, `nbd-${this.o.backupId}.sock`);
    const target = `rbd:${this.spec}@${this.snap}:id=${this.client.provider.user}:conf=${this.client.configFile}`;
    const server = spawn('qemu-nbd', ['-r', '-f', 'raw', '-k', sock, target], { stdio: ['ignore', 'ignore', 'pipe'] });
    const err: Buffer[] = [];
    server.stderr!.on('data', (d: Buffer) => err.push(d));
    for (let i = 0; ; i++) {
      try {
        const s = await new Promise<ReturnType<typeof connect>>((resolve, reject) => {
          const c = connect(sock, () => resolve(c));
          c.once('error', reject);
        });
        return { client: await NbdClient.connect(s), server };
      } catch (e) {
        if (server.exitCode !== null || i > 200) {
          server.kill();
          throw new StrategyError('TRANSFER_FAILED', `qemu-nbd on ${this.spec}@${this.snap}: ${Buffer.concat(err).toString().trim().slice(-300)}`, { cause: e });
        }
        await sleep(25);
      }
    }
  }

  private async stopNbd() {
    if (!this.nbd) return;
    const p = this.nbd;
    this.nbd = null;
    const { client, server } = await p.catch(() => ({ client: null, server: null }));
    await client?.close();
    if (server && server.exitCode === null) server.kill();
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
            const at = rec.offset + i;
            if (!isZero(piece)) yield* add(at, piece.length, piece);
            else {
              this.bytesZeroDetected += piece.length;
              if (this.wasAllocated(at, piece.length)) yield* add(at, piece.length, null);
            }
          }
        } else if (rec.type === 'zero' && this.wasAllocated(rec.offset, rec.length)) {
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

  /** In incremental mode: did the parent have data that a zero range here would erase? */
  private wasAllocated(offset: number, length: number): boolean {
    return !!this.parentSnap && overlaps(this.parentAllocated, offset, offset + length);
  }

  /** The record naming this snapshot is durable: keep only it as the base of the next incremental. */
  async commit(): Promise<void> {
    if (this.state !== 'open') throw new StrategyError('INVALID_STATE', `${this.name} already ${this.state}`);
    // From here on this snapshot is the recorded base: never rolled back, even if a removal fails.
    this.state = 'committed';
    await this.stopNbd();
    for (const s of await this.client.snapshots(this.o.pool, this.o.image)) {
      if (s.name.startsWith(SNAP_PREFIX) && s.name !== this.snap) {
        await this.client.run('rbd', ['snap', 'rm', `${this.spec}@${s.name}`], 'SNAPSHOT_CLEANUP_FAILED');
      }
    }
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    const wasOpen = this.state === 'open';
    this.state = 'closed';
    await this.stopNbd();
    // Not stored: drop the new snapshot, the parent stays the base of the next incremental.
    if (wasOpen) await this.client.run('rbd', ['snap', 'rm', `${this.spec}@${this.snap}`], 'SNAPSHOT_CLEANUP_FAILED');
  }
}
