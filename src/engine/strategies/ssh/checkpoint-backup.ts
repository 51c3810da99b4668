// SSH transfer with libvirt checkpoints (dirty bitmaps): the VM never leaves Nova's own disk chain.
//
// Why not a tracking overlay: a VM left running on an overlay Nova does not know about loses the
// writes since the last backup at the next Nova hard reboot (Nova regenerates the domain XML from
// its own files). A checkpoint is a persistent dirty bitmap stored inside Nova's qcow2 disk itself;
// it survives a domain being undefined, redefined and restarted.
//
// Each backup: `virsh backup-begin` in pull mode creates checkpoint `sb-<backupId>` atomically with
// a point-in-time NBD export of every disk (QEMU keeps the old data of blocks the guest overwrites
// in a scratch file meanwhile). A full backup reads the export's allocated extents; an incremental
// one first redefines the parent's checkpoint (its XML is stored with the parent backup) and reads
// only what the bitmap `backup-<disk>` marks dirty since then. On commit (once the backup record
// naming the new checkpoint is durable; before that any failure deletes it) the job ends, the parent's
// checkpoint goes (its bitmap with it) and the new checkpoint's libvirt metadata is dropped while its
// bitmap stays in the image: libvirt holds no checkpoint metadata between backups, so nothing blocks
// Nova from undefining the domain (undefine refuses inactive domains with checkpoint metadata).
// A lost bitmap (live migration, a crash of QEMU) fails the redefinition: full read, with the reason.
import { setTimeout as sleep } from 'node:timers/promises';
import { splitExtent, StrategyError, type DataExtent, type Extent, type StrategyDiskSource } from '../disk-source.ts';
import { HypervisorConnection, shq, type HypervisorCredentials } from './connection.ts';
import { coalesce, Libvirt, type DomainDisk } from './libvirt.ts';
import { NbdClient } from './nbd-client.ts';
import { HypervisorSession } from './hypervisor-session.ts';
import type { Transport } from './instance-backup.ts';
import type { Duplex } from 'node:stream';

export interface CheckpointBackupOptions {
  credentials: HypervisorCredentials;
  novaUuid: string;
  /** Nova's `OS-EXT-SRV-ATTR:instance_name`: the domain is looked up by it and must carry `novaUuid`. */
  domainName?: string;
  /** Names the checkpoint (`sb-<backupId>`) and the files of this run; [A-Za-z0-9_-] only. */
  backupId: string;
  /** checkpoint of each disk (by target) of the parent backup; absent → full backup. */
  parent?: Record<string, string> | null;
  /** Which file disks to back up (default all). */
  include?: (disk: DomainDisk) => boolean;
  /** Hypervisor folder for the NBD socket, scratch files and job XML (must be writable by QEMU). */
  workDir?: string;
  libvirtUri?: string;
  /** Largest extent handed to the repository. */
  maxExtent?: number;
  /** How the NBD export is reached: through the SSH connection (default) or a netcat relay. */
  transport?: Transport;
}

/** What a disk's backup record keeps for the next incremental. */
interface Checkpoint {
  checkpoint: string;
  /** `virsh checkpoint-dumpxml --no-domain`, to redefine it before the next backup. */
  xml: string;
}

const OURS = /^sb-[A-Za-z0-9_-]+$/;
const SB_LAYER = /\.sb-[A-Za-z0-9_-]+$/;

export class CheckpointInstanceBackup extends HypervisorSession<CheckpointBackupOptions> {
  readonly disks: CheckpointDiskSource[] = [];
  /** Leftovers of crashed runs removed at start (checkpoints, overlays of the overlay design). */
  readonly recovered: string[] = [];
  readonly checkpointName: string;
  readonly socket: string;
  private parentName: string | null = null;
  private parentRedefined = false;
  private jobStarted = false;
  /** The job's and the checkpoint's XML files, written by prepare() for snapshot(). */
  private jobFiles: { backup: string; checkpoint: string } | null = null;
  private state: 'open' | 'committed' | 'closed' = 'open';
  private files: string[] = [];
  /** Pid file of the netcat relay, once started. */
  private relayPid: string | null = null;

  private constructor(options: CheckpointBackupOptions, conn: HypervisorConnection) {
    super(options, conn);
    this.checkpointName = `sb-${options.backupId}`;
    const work = options.workDir ?? '/tmp';
    this.socket = `${work}/strongbox-${options.backupId}.sock`;
  }

  /** True when this hypervisor's libvirt has incremental backup (libvirt ≥ 6.0 with QEMU ≥ 4.2). */
  static async supported(conn: HypervisorConnection, uri?: string): Promise<boolean> {
    return (await conn.exec(new Libvirt(conn, uri).virsh('help', 'backup-begin'))).code === 0;
  }

  /** A backup of the domain's file disks alone: prepare(), its own point in time (atOnePoint), expose(). */
  static async open(options: CheckpointBackupOptions): Promise<CheckpointInstanceBackup> {
    return HypervisorSession.openAlone(await CheckpointInstanceBackup.prepare(options));
  }

  /**
   * Everything up to the point in time: leftovers recovered, the parent's checkpoint redefined, the
   * job's XML written. Then snapshot() (inside the caller's atOnePoint window) and expose().
   */
  static async prepare(options: CheckpointBackupOptions): Promise<CheckpointInstanceBackup> {
    if (!/^[A-Za-z0-9_-]+$/.test(options.backupId)) throw new StrategyError('INVALID_ARGUMENT', 'backupId must be [A-Za-z0-9_-]');
    const conn = await HypervisorConnection.connect(options.credentials);
    const session = new CheckpointInstanceBackup(options, conn);
    try {
      if (!(await CheckpointInstanceBackup.supported(conn, options.libvirtUri))) {
        throw new StrategyError('UNSUPPORTED', `libvirt on ${options.credentials.host} has no incremental backup (virsh backup-begin)`);
      }
      await session.start();
      return session;
    } catch (e) {
      await session.close().catch(() => {});
      throw e;
    }
  }

  private async virsh(errorCode: string, ...args: string[]) {
    const lv = await this.libvirt();
    return (await this.connection()).run(lv.virsh(...args), errorCode);
  }

  private async start() {
    const o = this.options;
    const lv = await this.libvirt();
    this.domain = o.domainName ? await lv.checkDomain(o.domainName, o.novaUuid) : await lv.domainName(o.novaUuid);
    const parents = Object.values(o.parent ?? {}).map(parseCheckpoint);
    const parent = parents.find((p): p is Checkpoint => p !== null) ?? null;

    await this.recover(parent?.checkpoint ?? null);

    const all = await lv.disks(this.domain);
    const disks = o.include ? all.filter(o.include) : all;
    if (disks.length === 0) throw new StrategyError('NO_DISKS', `domain ${this.domain} has no file-backed disks to back up`);
    const formats = new Map<string, string>();
    for (const d of disks) formats.set(d.target, (await lv.chain(d.source))[0]!.format);

    // The parent's checkpoint back into libvirt (its bitmap must still be in the images).
    let parentProblem: string | null = null;
    if (o.parent && !parent) parentProblem = 'parent backup has no libvirt checkpoint';
    else if (parent && !this.parentRedefined) {
      const file = await this.writeFile(`${this.checkpointName}.parent.xml`, parent.xml);
      const r = await (await this.connection()).exec(lv.virsh('checkpoint-create', this.domain, file, '--redefine', '--redefine-validate'));
      if (r.code === 0) this.parentRedefined = true;
      else parentProblem = `checkpoint ${parent.checkpoint} of the parent backup is unusable: ${r.stderr.trim()}`;
    }
    if (parent && !parentProblem) this.parentName = parent.checkpoint;
    const inParent = new Set(parent ? [...parent.xml.matchAll(/<disk name='([^']+)' checkpoint='bitmap'/g)].map((m) => m[1]) : []);

    const work = o.workDir ?? '/tmp';
    const backupDisks: string[] = [];
    const checkpointDisks: string[] = [];
    for (const d of all) {
      const chosen = disks.includes(d);
      const qcow2 = formats.get(d.target) === 'qcow2';
      // Raw images cannot hold a persistent bitmap: always read in full.
      checkpointDisks.push(`<disk name='${d.target}' checkpoint='${chosen && qcow2 ? 'bitmap' : 'no'}'/>`);
      if (!chosen) {
        backupDisks.push(`<disk name='${d.target}' backup='no'/>`);
        continue;
      }
      let reason: string | null = null;
      if (o.parent && parentProblem) reason = parentProblem;
      else if (o.parent && !inParent.has(d.target)) reason = `checkpoint ${parent!.checkpoint} of the parent backup tracks no changes of ${d.target}`;
      const incremental = !!this.parentName && !reason && inParent.has(d.target);
      const scratch = `${work}/strongbox-${o.backupId}-${d.target}.scratch`;
      backupDisks.push(
        `<disk name='${d.target}' backup='yes' type='file' backupmode='${incremental ? 'incremental' : 'full'}'${incremental ? ` incremental='${this.parentName}'` : ''}>` +
          `<scratch file='${scratch}'/></disk>`,
      );
      this.disks.push(new CheckpointDiskSource(this, d, incremental, reason));
    }
    // RBD disks are read from Ceph with their own snapshots: no bitmap, not in the job.
    for (const d of await lv.rbdDisks(this.domain)) {
      checkpointDisks.push(`<disk name='${d.target}' checkpoint='no'/>`);
      backupDisks.push(`<disk name='${d.target}' backup='no'/>`);
    }
    const backupXml =
      `<domainbackup mode='pull'>${this.parentName ? `<incremental>${this.parentName}</incremental>` : ''}` +
      `<server transport='unix' socket='${this.socket}'/><disks>${backupDisks.join('')}</disks></domainbackup>`;
    const checkpointXml = `<domaincheckpoint><name>${this.checkpointName}</name><disks>${checkpointDisks.join('')}</disks></domaincheckpoint>`;
    this.jobFiles = {
      backup: await this.writeFile(`${this.checkpointName}.backup.xml`, backupXml),
      checkpoint: await this.writeFile(`${this.checkpointName}.checkpoint.xml`, checkpointXml),
    };
  }

  /**
   * The point in time, called once inside atOnePoint's window: the job starts and creates the
   * checkpoint atomically with a point-in-time export of every disk (instant; no reads yet).
   */
  async snapshot() {
    if (!this.jobFiles || this.jobStarted) throw new StrategyError('INVALID_STATE', `backup of ${this.domain}: snapshot() once, after prepare()`);
    const lv = await this.libvirt();
    const r = await (await this.connection()).exec(lv.virsh('backup-begin', this.domain, '--backupxml', this.jobFiles.backup, '--checkpointxml', this.jobFiles.checkpoint));
    if (r.code !== 0) throw new StrategyError('SNAPSHOT_FAILED', `backup job on ${this.domain} failed to start: ${r.stderr.trim()}`);
    this.jobStarted = true;
  }

  /** After the window: each disk's extents and NBD connection, and the new checkpoint's definition. */
  async expose() {
    if (!this.jobStarted) throw new StrategyError('INVALID_STATE', `backup of ${this.domain}: expose() after snapshot()`);
    for (const disk of this.disks) await disk.prepare();
    // The new checkpoint's definition, recorded with this backup to redefine it before the next one.
    // Without its <parent>: the parent's checkpoint is deleted on commit, and a redefinition naming
    // a parent libvirt does not know fails.
    const xml = (await this.virsh('CHECKPOINT_FAILED', 'checkpoint-dumpxml', this.domain, this.checkpointName, '--no-domain'))
      .replace(/\s*<parent>[\s\S]*?<\/parent>/, '');
    const checkpoint = JSON.stringify({ checkpoint: this.checkpointName, xml } satisfies Checkpoint);
    for (const d of this.disks) d.checkpoint = d.tracked ? checkpoint : '';
  }

  /** Leftovers of a crashed run: a backup job, checkpoints of ours that are not the parent, overlays. */
  private async recover(parentName: string | null) {
    const conn = await this.connection();
    const lv = await this.libvirt();
    const job = await conn.exec(lv.virsh('domjobinfo', this.domain));
    if (/Operation:\s+Backup/.test(job.stdout.toString())) {
      await conn.exec(lv.virsh('domjobabort', this.domain));
      this.recovered.push('backup job');
    }
    const list = await conn.run(lv.virsh('checkpoint-list', this.domain, '--name'), 'DOMAIN_QUERY_FAILED');
    for (const name of list.split('\n').map((l) => l.trim()).filter((l) => OURS.test(l))) {
      if (name === parentName) {
        this.parentRedefined = true;
        continue;
      }
      await this.virsh('CHECKPOINT_FAILED', 'checkpoint-delete', this.domain, name);
      this.recovered.push(`checkpoint ${name}`);
    }
    // A VM still on an overlay of the tracking-overlay design: merge it back into Nova's disk.
    for (const d of await lv.disks(this.domain)) {
      if (!SB_LAYER.test(d.source)) continue;
      await this.virsh('BLOCKCOMMIT_FAILED', 'blockcommit', this.domain, d.target, '--active', '--shallow', '--pivot', '--wait');
      await conn.exec(['rm', '-f', '--', d.source]);
      this.recovered.push(d.source);
    }
  }

  /**
   * A stream to the job's NBD server: a channel of the SSH connection, or in netcat mode plain TCP
   * (trusted networks only) through one relay to the job's socket (`socat … fork`: one TCP
   * connection per disk), started over SSH and stopped with the job.
   */
  async nbdStream(): Promise<Duplex> {
    const conn = await this.connection();
    const t = this.options.transport ?? { kind: 'ssh' };
    if (t.kind === 'ssh') return conn.forwardUnix(this.socket);
    if (!this.relayPid) {
      this.relayPid = `${this.socket}.relay`;
      this.files.push(this.relayPid);
      await conn.startBackground(`socat TCP-LISTEN:${t.port},bind=${t.bindAddress},reuseaddr,fork UNIX-CONNECT:${this.socket}`, this.relayPid, 'TRANSFER_FAILED');
    }
    return this.relaySocket(t);
  }

  private async stopRelay() {
    if (!this.relayPid) return;
    const f = shq(this.relayPid);
    await (await this.connection()).exec(`sh -c ${shq(`[ -f ${f} ] && kill "$(cat ${f})" 2>/dev/null; rm -f ${f}`)}`, { prefixed: false });
    this.relayPid = null;
  }

  private async writeFile(name: string, content: string): Promise<string> {
    const path = `${this.options.workDir ?? '/tmp'}/strongbox-${name}`;
    this.files.push(path); // removed by close() whatever happens below
    // Checked by reading it back: under heavy load an exec channel has been seen to close without
    // an exit status although the command ran.
    let last = '';
    for (let attempt = 0; attempt < 3; attempt++) {
      const conn = await this.connection();
      const r = await conn.exec(`sh -c ${shq(`printf '%s' ${shq(content)} > ${shq(path)}`)}`);
      if (r.code === 0) return path;
      last = `exited ${r.code}: ${r.stderr.trim()}`;
      const back = await conn.exec(['cat', '--', path]);
      if (back.code === 0 && back.stdout.toString() === content) return path;
    }
    throw new StrategyError('COMMAND_FAILED', `writing ${path} on ${this.options.credentials.host} failed: ${last}`);
  }

  /**
   * Once every disk committed (the backup record naming the new checkpoint is durable): end the
   * job, delete the parent's checkpoint with its bitmap, keep only the new checkpoint's bitmap.
   * Never rolled back from here: if a step fails, the next run's recovery finishes it (the new
   * checkpoint is then its parent; the old one is not and goes).
   */
  async commitAll() {
    if (this.state !== 'open') return;
    if (this.disks.some((d) => !d.committed)) return;
    this.state = 'committed';
    await this.endJob();
    if (this.parentName) {
      await this.virsh('CHECKPOINT_FAILED', 'checkpoint-delete', this.domain, this.parentName);
      this.parentRedefined = false;
    }
    await this.virsh('CHECKPOINT_FAILED', 'checkpoint-delete', this.domain, this.checkpointName, '--metadata');
  }

  private async endJob() {
    for (const d of this.disks) await d.stopReading();
    await this.stopRelay();
    if (!this.jobStarted) return;
    const conn = await this.connection();
    const lv = await this.libvirt();
    const r = await conn.exec(lv.virsh('domjobabort', this.domain));
    if (r.code !== 0 && !/no job is active/.test(r.stderr)) throw new StrategyError('JOB_FAILED', `ending the backup job of ${this.domain} failed: ${r.stderr.trim()}`);
    this.jobStarted = false;
    // The job's end removes libvirt's scratch files and the socket asynchronously.
    for (let i = 0; i < 20 && /Operation:\s+Backup/.test((await conn.exec(lv.virsh('domjobinfo', this.domain))).stdout.toString()); i++) await sleep(100);
  }

  /**
   * Without commit: the new checkpoint goes (the parent's bitmap still has every change since the
   * parent backup) and the parent's redefined metadata is dropped again; the VM is as before.
   */
  async close() {
    if (this.state === 'closed') return;
    const wasOpen = this.state === 'open';
    this.state = 'closed';
    const errors: unknown[] = [];
    const step = async (f: () => Promise<unknown>) => {
      try {
        await f();
      } catch (e) {
        errors.push(e);
      }
    };
    if (this.domain) await step(() => this.endJob()); // a no-op unless a commit failed before ending it
    if (wasOpen && this.domain) {
      await step(async () => {
        const lv = await this.libvirt();
        const conn = await this.connection();
        const list = await conn.run(lv.virsh('checkpoint-list', this.domain, '--name'), 'DOMAIN_QUERY_FAILED');
        if (list.split('\n').some((l) => l.trim() === this.checkpointName)) await this.virsh('CHECKPOINT_FAILED', 'checkpoint-delete', this.domain, this.checkpointName);
        if (this.parentRedefined && this.parentName) await this.virsh('CHECKPOINT_FAILED', 'checkpoint-delete', this.domain, this.parentName, '--metadata');
      });
    }
    await step(async () => {
      if (this.files.length) await (await this.connection()).exec(['rm', '-f', '--', ...this.files]);
    });
    this.conn.close();
    if (errors.length) throw errors[0];
  }
}

function parseCheckpoint(s: string): Checkpoint | null {
  try {
    const c = JSON.parse(s) as Partial<Checkpoint>;
    return typeof c.checkpoint === 'string' && typeof c.xml === 'string' && OURS.test(c.checkpoint) ? (c as Checkpoint) : null;
  } catch {
    return null;
  }
}

export class CheckpointDiskSource implements StrategyDiskSource {
  readonly name: string;
  size = 0;
  readonly mode: 'full' | 'incremental';
  bytesRead = 0;
  checkpoint = '';
  committed = false;
  /** Whether the new checkpoint tracks this disk (qcow2 only). */
  tracked = true;
  private extentList: Extent[] = [];
  private allocated: Extent[] = [];
  private nbd: NbdClient | null = null;
  private lost: Promise<never> = new Promise<never>(() => {});

  constructor(
    private session: CheckpointInstanceBackup,
    private disk: DomainDisk,
    incremental: boolean,
    readonly fallbackReason: string | null,
  ) {
    this.name = disk.target;
    this.mode = incremental ? 'incremental' : 'full';
  }

  /** The disk's image on the hypervisor (Nova's file). */
  get source(): string {
    return this.disk.source;
  }

  async prepare() {
    const conn = await this.session.connection();
    this.tracked = (await (await this.session.libvirt()).chain(this.disk.source))[0]!.format === 'qcow2';
    const spec = `driver=nbd,server.type=unix,server.path=${this.session.socket},export=${this.disk.target}`;
    const map = async (extra: string) =>
      JSON.parse(await conn.query(['qemu-img', 'map', '--output=json', '--image-opts', spec + extra], 'MAP_FAILED')) as Array<Record<string, unknown>>;
    this.allocated = coalesce(
      (await map('')).filter((e) => e['data'] === true).map((e) => ({ offset: Number(e['start']), length: Number(e['length']) })),
    );
    if (this.mode === 'incremental') {
      // x-dirty-bitmap makes QEMU report the bitmap as block status: dirty ranges read "data": false.
      const dirty = (await map(`,x-dirty-bitmap=qemu:dirty-bitmap:backup-${this.disk.target}`)).filter((e) => e['data'] === false);
      this.extentList = coalesce(dirty.map((e) => ({ offset: Number(e['start']), length: Number(e['length']) })));
    } else {
      this.extentList = this.allocated.map((e) => ({ ...e }));
    }
    const stream = await this.session.nbdStream();
    this.lost = conn.lost;
    this.nbd = await Promise.race([NbdClient.connect(stream, this.disk.target), conn.lost]);
    this.size = this.nbd.size;
  }

  async allocatedExtents(): Promise<Extent[]> {
    return this.allocated.map((e) => ({ ...e }));
  }

  async changedExtents(): Promise<Extent[] | null> {
    return this.mode === 'incremental' ? this.extentList.map((e) => ({ ...e })) : null;
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
    for (const e of this.extentList) {
      for (const p of splitExtent(e, max)) yield { ...p, data: await this.read(p.offset, p.length) };
    }
  }

  async stopReading() {
    await this.nbd?.close();
    this.nbd = null;
  }

  async commit(): Promise<void> {
    if (this.committed) throw new StrategyError('INVALID_STATE', `disk ${this.name} already committed`);
    this.committed = true;
    await this.session.commitAll();
  }

  async close(): Promise<void> {
    await this.stopReading();
  }
}
