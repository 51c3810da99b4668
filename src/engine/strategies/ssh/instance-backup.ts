// SSH transfer strategy: back up the file disks of a Nova instance straight from its KVM hypervisor.
//
// Design (tracking layer): every backup takes an atomic disk-only external snapshot, which pivots
// the VM onto a new overlay `<disk>.sb-<backupId>` and freezes the layer below. The frozen chain is
// read through qemu-nbd (NBD over the SSH connection, or over a plain TCP relay in netcat mode).
// - A full backup reads the allocated extents of the whole frozen chain.
// - An incremental backup reads only what the previous backup's overlay (the frozen top layer)
//   holds: its map with the backing cut off is exactly what the guest wrote since that backup.
// On commit the new overlay stays as the tracking layer for the next incremental (the "last
// snapshot kept in the environment") and the previous tracking layer is merged into its backing,
// so the chain is always Nova's own files + at most one Strongbox layer. With `track: false` the
// new overlay is merged back (`blockcommit --active --shallow --pivot`) and the chain is exactly
// Nova's again. Any failure merges the new overlay back and deletes it.
import type { Duplex } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { splitExtent, StrategyError, type DataExtent, type Extent, type StrategyDiskSource } from '../disk-source.ts';
import { HypervisorConnection, shq, type HypervisorCredentials } from './connection.ts';
import { coalesce, Libvirt, type DomainDisk } from './libvirt.ts';
import { HypervisorSession } from './hypervisor-session.ts';

export type { DomainDisk };
import { NbdClient } from './nbd-client.ts';

export type Transport = { kind: 'ssh' } | { kind: 'netcat'; bindAddress: string; port: number };

export interface SshBackupOptions {
  credentials: HypervisorCredentials;
  novaUuid: string;
  /** Nova's `OS-EXT-SRV-ATTR:instance_name`: the domain is looked up by it and must carry `novaUuid`. */
  domainName?: string;
  /** Which file disks to back up (default all); the others are left out of the snapshot. */
  include?: (disk: DomainDisk) => boolean;
  /** Names the overlays (`<disk>.sb-<backupId>`); [A-Za-z0-9_-] only. */
  backupId: string;
  /** checkpoint of each disk (by target) of the parent backup; absent → full backup. */
  parent?: Record<string, string> | null;
  /** Keep a tracking layer for incrementals (default true). */
  track?: boolean;
  transport?: Transport;
  /** Where overlays are created; default: next to each disk. */
  overlayDir?: string;
  /** Hypervisor folder for qemu-nbd sockets and pid files (must be visible to the host's sshd). */
  workDir?: string;
  libvirtUri?: string;
  /** Largest extent handed to the repository. */
  maxExtent?: number;
}

const SB_LAYER = /\.sb-[A-Za-z0-9_-]+$/;

interface Checkpoint {
  layer: string;
}

export class SshInstanceBackup extends HypervisorSession<SshBackupOptions> {
  readonly disks: SshDiskSource[] = [];
  /** Merges done at start because a crashed run had left the VM on a temporary overlay. */
  readonly recovered: string[] = [];

  /** What prepare() chose for snapshot(): the disks with their new overlays, and the virsh command. */
  private planned: { disks: DomainDisk[]; overlays: string[]; command: string[] } | null = null;
  private snapshotted = false;

  private constructor(options: SshBackupOptions, conn: HypervisorConnection) {
    super(options, conn);
  }

  /** A backup of the domain's file disks alone: prepare(), its own point in time (atOnePoint), expose(). */
  static async open(options: SshBackupOptions): Promise<SshInstanceBackup> {
    return HypervisorSession.openAlone(await SshInstanceBackup.prepare(options));
  }

  /**
   * Everything up to the point in time: leftover overlays merged back, the new overlays chosen. Then
   * snapshot() (inside the caller's atOnePoint window) and expose().
   */
  static async prepare(options: SshBackupOptions): Promise<SshInstanceBackup> {
    if (!/^[A-Za-z0-9_-]+$/.test(options.backupId)) throw new StrategyError('INVALID_ARGUMENT', 'backupId must be [A-Za-z0-9_-]');
    const conn = await HypervisorConnection.connect(options.credentials);
    const session = new SshInstanceBackup(options, conn);
    try {
      await session.start();
      return session;
    } catch (e) {
      await session.close().catch(() => {});
      throw e;
    }
  }

  private async start() {
    const o = this.options;
    const lv = await this.libvirt();
    this.domain = o.domainName ? await lv.checkDomain(o.domainName, o.novaUuid) : await lv.domainName(o.novaUuid);
    const parentLayers = this.parentLayers();

    let disks = await lv.disks(this.domain);
    // A VM still on a Strongbox overlay that is not the parent's tracking layer was left there by a
    // crashed run: merge it back first (no data is lost; that disk's next read is a full one).
    for (const d of disks) {
      if (SB_LAYER.test(d.source) && parentLayers.get(d.target) !== d.source) {
        await this.mergeActive(d.target, d.source);
        this.recovered.push(d.source);
      }
    }
    if (this.recovered.length) disks = await lv.disks(this.domain);
    const skipped = o.include ? disks.filter((d) => !o.include!(d)) : [];
    disks = disks.filter((d) => !skipped.includes(d));
    if (disks.length === 0) throw new StrategyError('NO_DISKS', `domain ${this.domain} has no file-backed disks to back up`);

    const overlays = disks.map((d) => {
      const base = d.source.replace(SB_LAYER, '');
      const dir = o.overlayDir ?? base.slice(0, base.lastIndexOf('/'));
      return `${dir}/${base.slice(base.lastIndexOf('/') + 1)}.sb-${o.backupId}`;
    });
    // Not --quiesce: atOnePoint freezes the guest's filesystems itself when an agent answers.
    const args = lv.virsh('snapshot-create-as', this.domain, `strongbox-${o.backupId}`, '--disk-only', '--atomic', '--no-metadata');
    disks.forEach((d, i) => args.push('--diskspec', `${d.target},snapshot=external,file=${overlays[i]}`));
    // Unlisted disks would get libvirt's default (an external overlay too): say no explicitly.
    for (const d of skipped) args.push('--diskspec', `${d.target},snapshot=no`);
    // RBD disks are read from Ceph (their own snapshots), never overlaid.
    for (const d of await lv.rbdDisks(this.domain)) args.push('--diskspec', `${d.target},snapshot=no`);
    this.planned = { disks, overlays, command: args };
  }

  /**
   * The point in time, called once inside atOnePoint's window: the atomic disk-only snapshot pivots
   * every disk onto its new overlay and freezes the layers below (instant; no reads yet).
   */
  async snapshot() {
    if (!this.planned || this.snapshotted) throw new StrategyError('INVALID_STATE', `backup of ${this.domain}: snapshot() once, after prepare()`);
    this.snapshotted = true;
    const o = this.options;
    const { disks, overlays, command } = this.planned;
    const parentLayers = this.parentLayers();
    const snap = await (await this.connection()).exec(command);
    if (snap.code !== 0) {
      // --atomic: libvirt made no overlay active; remove any file it may have created.
      await this.removeFiles(overlays.filter((p) => !disks.some((d) => d.source === p)));
      throw new StrategyError('SNAPSHOT_FAILED', `disk-only snapshot of ${this.domain} failed: ${snap.stderr.trim()}`);
    }
    for (const [i, d] of disks.entries()) {
      const parentLayer = parentLayers.get(d.target);
      let fallbackReason: string | null = null;
      if (o.parent && !parentLayer) fallbackReason = `parent backup has no checkpoint for ${d.target}`;
      else if (parentLayer && parentLayer !== d.source) {
        fallbackReason = `tracking layer ${parentLayer} is no longer the active layer of ${d.target} (found ${d.source})`;
      }
      const incremental = !!parentLayer && !fallbackReason;
      // Registered at once so that a failure (here or in another source's step) rolls back every overlay.
      this.disks.push(new SshDiskSource(this, d, overlays[i]!, incremental, fallbackReason));
    }
  }

  /** After the window: each frozen chain mapped and served over NBD. */
  async expose() {
    if (!this.snapshotted) throw new StrategyError('INVALID_STATE', `backup of ${this.domain}: expose() after snapshot()`);
    const lv = await this.libvirt();
    for (const disk of this.disks) await disk.prepare(lv);
  }

  /** The parent backup's tracking layer of each disk, by target. */
  private parentLayers(): Map<string, string> {
    return new Map(Object.entries(this.options.parent ?? {}).map(([target, cp]) => [target, (JSON.parse(cp) as Checkpoint).layer]));
  }

  async removeFiles(paths: string[]) {
    if (paths.length === 0) return;
    await (await this.connection()).exec(['rm', '-f', '--', ...paths]);
  }

  /** `blockcommit --active --shallow --pivot`: merge the active overlay into the layer below, delete it. */
  async mergeActive(target: string, overlay: string) {
    const lv = await this.libvirt();
    const args = lv.virsh('blockcommit', this.domain, target, '--active', '--shallow', '--pivot', '--wait');
    await this.blockJob(args, target, `merging ${overlay} back into its backing`);
    await this.removeFiles([overlay]);
  }

  /** Non-active commit of `layer` into `base` (the VM keeps running on the overlay above). */
  async mergeBelow(target: string, layer: string, base: string) {
    const lv = await this.libvirt();
    const args = lv.virsh('blockcommit', this.domain, target, '--top', layer, '--base', base, '--wait');
    await this.blockJob(args, target, `merging ${layer} into ${base}`);
    await this.removeFiles([layer]);
  }

  private async blockJob(args: string[], target: string, what: string) {
    let last = '';
    for (let attempt = 0; attempt < 2; attempt++) {
      const conn = await this.connection();
      const r = await conn.exec(args);
      if (r.code === 0) return;
      last = r.stderr.trim();
      // A stale job blocks new ones: abort it and try once more.
      await conn.exec(new Libvirt(conn, this.options.libvirtUri).virsh('blockjob', this.domain, target, '--abort'));
      await sleep(200);
    }
    throw new StrategyError(
      'BLOCKCOMMIT_FAILED',
      `${what} on ${this.domain}/${target} failed: ${last}; the disk stays on its current layer until the next backup of this instance merges it`,
    );
  }

  /** Close every disk (rolling back uncommitted ones), then the connection. */
  async close() {
    const errors: unknown[] = [];
    for (const d of this.disks) await d.close().catch((e) => errors.push(e));
    this.conn.close();
    if (errors.length) throw errors[0];
  }
}

export class SshDiskSource implements StrategyDiskSource {
  readonly name: string;
  size = 0;
  readonly mode: 'full' | 'incremental';
  bytesRead = 0;
  checkpoint = '';
  private extentList: Array<Extent & { zero: boolean }> = [];
  private allocated: Extent[] = [];
  private nbd: NbdClient | null = null;
  private lost: Promise<never> = new Promise<never>(() => {});
  private pidFile: string;
  private socket: string;
  private frozen: string;
  private frozenBacking: string | null = null;
  private state: 'open' | 'committed' | 'closed' = 'open';

  constructor(
    private session: SshInstanceBackup,
    private disk: DomainDisk,
    private overlay: string,
    incremental: boolean,
    readonly fallbackReason: string | null,
  ) {
    this.name = disk.target;
    this.mode = incremental ? 'incremental' : 'full';
    this.frozen = disk.source;
    if (session.options.track !== false) this.checkpoint = JSON.stringify({ layer: overlay } satisfies Checkpoint);
    const work = session.options.workDir ?? '/tmp';
    this.socket = `${work}/strongbox-${session.options.backupId}-${disk.target}.sock`;
    this.pidFile = `${work}/strongbox-${session.options.backupId}-${disk.target}.pid`;
  }

  /** Top of the frozen chain being read (the active layer before this backup's snapshot). */
  get frozenImage(): string {
    return this.frozen;
  }

  /** The disk's image as the domain named it before this backup (for telling disks apart). */
  get source(): string {
    return this.disk.source;
  }

  /** The overlay this backup's snapshot created. */
  get overlayImage(): string {
    return this.overlay;
  }

  /** Map the frozen layer(s) and serve the frozen chain over NBD. */
  async prepare(lv: Libvirt) {
    const chain = await lv.chain(this.frozen);
    this.size = chain[0].virtualSize;
    this.frozenBacking = chain[0].backingFilename;
    const chainEntries = (await lv.mapChain(this.frozen)).filter((e) => e.data);
    this.allocated = coalesce(chainEntries.map(({ offset, length }) => ({ offset, length })));
    if (this.mode === 'incremental') {
      const entries = (await lv.mapLayer(this.frozen)).filter((e) => e.present);
      this.extentList = coalesce(
        entries.map((e) => ({ offset: e.offset, length: e.length, zero: !e.data })),
        (a, b) => a.zero === b.zero,
      );
    } else {
      this.extentList = this.allocated.map((e) => ({ ...e, zero: false }));
    }
    const conn = await this.session.connection();
    await conn.run(
      ['qemu-nbd', '--fork', `--pid-file=${this.pidFile}`, '-r', '-f', chain[0].format, '-k', this.socket, this.frozen],
      'TRANSFER_FAILED',
    );
    const stream = await this.openTransport(conn);
    this.lost = conn.lost;
    this.nbd = await Promise.race([NbdClient.connect(stream), conn.lost]);
    if (this.nbd.size !== this.size) throw new StrategyError('TRANSFER_FAILED', `NBD export size ${this.nbd.size} ≠ disk size ${this.size}`);
  }

  private async openTransport(conn: HypervisorConnection): Promise<Duplex> {
    const t = this.session.options.transport ?? { kind: 'ssh' };
    if (t.kind === 'ssh') return conn.forwardUnix(this.socket);
    // Netcat mode: the data leaves the hypervisor over plain TCP (trusted networks only); a
    // one-shot relay from TCP to qemu-nbd's socket, started and stopped over SSH.
    await conn.startBackground(`socat TCP-LISTEN:${t.port},bind=${t.bindAddress},reuseaddr UNIX-CONNECT:${this.socket}`, `${this.pidFile}.relay`, 'TRANSFER_FAILED');
    return this.session.relaySocket(t);
  }

  async allocatedExtents(): Promise<Extent[]> {
    return this.allocated.map((e) => ({ ...e }));
  }

  async changedExtents(): Promise<Extent[] | null> {
    return this.mode === 'incremental' ? this.extentList.map(({ offset, length }) => ({ offset, length })) : null;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    if (!this.nbd) throw new StrategyError('TRANSFER_FAILED', 'disk source is closed');
    const n = Math.max(0, Math.min(length, this.size - offset));
    if (n === 0) return Buffer.alloc(0);
    const b = await Promise.race([this.nbd.read(offset, n), this.lost]).catch((e: unknown) => {
      throw e instanceof StrategyError && e.code === 'CONNECTION_LOST' ? new StrategyError('TRANSFER_FAILED', e.reason, { cause: e }) : e;
    });
    this.bytesRead += b.length;
    return b;
  }

  async *extents(): AsyncIterable<DataExtent> {
    const max = this.session.options.maxExtent ?? 4 * 1024 * 1024;
    const pieces = this.extentList.flatMap((e) => [...splitExtent(e, max)].map((p) => ({ ...p, zero: e.zero })));
    // Keep a few reads in flight: NBD pipelines them over one channel.
    const window: Array<Promise<DataExtent>> = [];
    let next = 0;
    const issue = () => {
      const p = pieces[next++];
      const r: Promise<DataExtent> = p.zero
        ? Promise.resolve({ offset: p.offset, length: p.length, data: null })
        : this.read(p.offset, p.length).then((data) => ({ offset: p.offset, length: p.length, data }));
      r.catch(() => {}); // reads behind a failed one fail too; only the first is reported
      window.push(r);
    };
    while (next < pieces.length && window.length < 4) issue();
    while (window.length) {
      const head = window.shift()!;
      if (next < pieces.length) issue();
      yield await head;
    }
  }

  private async stopServer() {
    await this.nbd?.close();
    this.nbd = null;
    const conn = await this.session.connection();
    const f = shq(this.pidFile);
    await conn.exec(`sh -c ${shq(`for p in ${f} ${f}.relay; do [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null; rm -f "$p"; done; rm -f ${shq(this.socket)}`)}`, {
      prefixed: false,
    });
  }

  async commit(): Promise<void> {
    if (this.state !== 'open') throw new StrategyError('INVALID_STATE', `disk ${this.name} already ${this.state}`);
    await this.stopServer();
    if (this.session.options.track === false) {
      await this.session.mergeActive(this.disk.target, this.overlay);
    } else {
      if (SB_LAYER.test(this.frozen)) {
        if (!this.frozenBacking) throw new StrategyError('BLOCKCOMMIT_FAILED', `${this.frozen} has no backing file`);
        await this.session.mergeBelow(this.disk.target, this.frozen, this.frozenBacking);
      }
    }
    this.state = 'committed';
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    const wasOpen = this.state === 'open';
    this.state = 'closed';
    await this.stopServer().catch(() => {});
    if (wasOpen) await this.session.mergeActive(this.disk.target, this.overlay);
  }
}
