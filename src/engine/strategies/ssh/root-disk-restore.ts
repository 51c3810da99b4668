// RESTORE of a Nova root disk onto a server Nova booted from an existing image (the backup's base
// image or a mapped one), instead of uploading the whole disk to Glance: with the server stopped,
// its root disk file is served writable by qemu-nbd on the hypervisor and reached through the SSH
// connection; the backup's disk is streamed from the repository in order, and per piece (the
// repository's chunk size) what the new disk holds there is read and the backup's bytes written
// only where they differ. Ranges both sides read as zeros (a zero chunk of the backup, a range the
// new disk's chain does not hold) are neither read nor written. Plain bytes are compared, so the
// result is the backed-up disk whatever image the server was booted from: a wrong image costs
// writes, never data.
import type { EntityManager } from '@mikro-orm/postgresql';
import { setTimeout as sleep } from 'node:timers/promises';
import { Writable } from 'node:stream';
import { Hypervisor } from '../../../db/entities/index.ts';
import type { SecretBox } from '../../../db/secrets.ts';
import type { NovaServer } from '../../../openstack/index.ts';
import type { Repository } from '../../repository/index.ts';
import { StrategyError, type Extent } from '../disk-source.ts';
import { classify } from './backup.ts';
import { HypervisorConnection, shq } from './connection.ts';
import { credentialsOf, hypervisorOf } from './hypervisor-access.ts';
import { coalesce, Libvirt } from './libvirt.ts';
import { NbdClient } from './nbd-client.ts';

export type RootDiskResult = {
  hypervisor: string;
  /** The backup's disk size (what was compared). */
  sizeBytes: number;
  /** Bytes read from the new disk to compare. */
  readBytes: number;
  /** Bytes written because they differed. */
  writtenBytes: number;
  /** The new disk was smaller than the backup's and was grown to its size first. */
  grownFrom: number | null;
  /** The new disk is larger than the backup's: bytes past the backup's end were left as the image has them. */
  largerBy: number;
};

/** How many compare/write pieces are in flight over the one NBD connection. */
const WINDOW = 8;

export async function writeRootDisk(o: {
  em: EntityManager;
  secrets: SecretBox;
  cloudId: string;
  /** The stopped server, as Nova shows it to an admin (host and instance name). */
  server: NovaServer;
  repo: Repository;
  from: { repositoryBackupId: string; position: number; sizeBytes: number };
  /** Names the qemu-nbd socket and pid file; [A-Za-z0-9_-]. */
  tag: string;
  workDir?: string;
  signal: AbortSignal;
  onProgress?: (p: { bytesDone: number; bytesTotal: number }) => void;
}): Promise<RootDiskResult> {
  const hv = await hypervisorOf(o.em, o.cloudId, o.server, `restored server ${o.server.id}`);
  const conn = await HypervisorConnection.connect(credentialsOf(hv, o));
  if (!hv.pinnedHostKey) await o.em.nativeUpdate(Hypervisor, { id: hv.id }, { pinnedHostKey: conn.hostKeyFingerprint });
  const work = o.workDir ?? '/tmp';
  const socket = `${work}/strongbox-restore-${o.tag}.sock`;
  const pidFile = `${work}/strongbox-restore-${o.tag}.pid`;
  let nbd: NbdClient | null = null;
  try {
    const lv = new Libvirt(conn);
    const name = o.server['OS-EXT-SRV-ATTR:instance_name'];
    const domain = name ? await lv.checkDomain(name, o.server.id) : await lv.domainName(o.server.id);
    const root = (await lv.disks(domain)).find((d) => classify(d, [])?.kind === 'NOVA_ROOT');
    if (!root) throw new StrategyError('NO_DISKS', `domain ${domain} on ${hv.hostname} has no Nova root disk file`);
    const top = (await lv.chain(root.source))[0]!;
    const size = o.from.sizeBytes;
    let grownFrom: number | null = null;
    if (top.virtualSize < size) {
      // Nova would have refused a flavor smaller than the disk; grow it rather than fail.
      await conn.run(['qemu-img', 'resize', '-q', '-f', top.format, root.source, String(size)], 'COMMAND_FAILED');
      grownFrom = top.virtualSize;
    }
    // The server is stopped: the map of its chain is current. What reads as zeros needs no read.
    const zeros = coalesce((await lv.mapChain(root.source)).filter((e) => e.zero).map(({ offset, length }) => ({ offset, length })));

    await conn.run(['qemu-nbd', '--fork', `--pid-file=${pidFile}`, '-f', top.format, '-k', socket, root.source], 'TRANSFER_FAILED');
    nbd = await Promise.race([NbdClient.connect(await conn.forwardUnix(socket)), conn.lost]);
    if (nbd.readOnly) throw new StrategyError('TRANSFER_FAILED', `qemu-nbd serves ${root.source} read-only`);
    if (nbd.size < size) throw new StrategyError('TRANSFER_FAILED', `${root.source} is ${nbd.size} bytes, the backup's disk ${size}`);

    const diff = new DiffWriter(nbd, zeros, o.repo.config.chunkSize, conn);
    await diff.run((sink, signal) =>
      o.repo.restore(o.from.repositoryBackupId, o.from.position, { kind: 'stream', stream: sink }, { signal: AbortSignal.any([o.signal, signal]), onProgress: o.onProgress }),
    );
    await Promise.race([nbd.flush(), conn.lost]);
    await nbd.close();
    nbd = null;
    await stopQemuNbd(conn, pidFile, socket);
    return { hypervisor: hv.hostname, sizeBytes: size, readBytes: diff.readBytes, writtenBytes: diff.writtenBytes, grownFrom, largerBy: Math.max(0, top.virtualSize - size) };
  } finally {
    if (nbd) {
      await nbd.close();
      await stopQemuNbd(conn, pidFile, socket).catch(() => {});
    }
    conn.close();
  }
}

/** Stops qemu-nbd and waits until it has exited: it holds the disk's write lock until then. */
async function stopQemuNbd(conn: HypervisorConnection, pidFile: string, socket: string) {
  const f = shq(pidFile);
  const script = `[ -f ${f} ] || exit 0; p="$(cat ${f})"; kill "$p" 2>/dev/null; i=0; while kill -0 "$p" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; kill -0 "$p" 2>/dev/null && exit 1; rm -f ${f} ${shq(socket)}`;
  for (let attempt = 1; ; attempt++) {
    const r = await conn.exec(`sh -c ${shq(script)}`, { prefixed: false });
    if (r.code === 0) return;
    if (attempt >= 3) throw new StrategyError('TRANSFER_FAILED', `qemu-nbd (${pidFile}) did not exit: ${r.stderr.trim()}`);
    await sleep(200);
  }
}

/**
 * The in-order bytes of the backup's disk, cut into pieces of `piece` bytes at multiples of it;
 * each compared with the new disk and written where it differs, a few pieces in flight.
 */
class DiffWriter {
  readBytes = 0;
  writtenBytes = 0;
  #offset = 0;
  #carry: Buffer[] = [];
  #carried = 0;
  #running = new Set<Promise<void>>();
  #failure: unknown = null;
  #stop = new AbortController();
  #zeroIndex = 0;
  readonly #zero: Buffer;

  constructor(
    private nbd: NbdClient,
    private zeros: Extent[],
    private piece: number,
    private conn: HypervisorConnection,
  ) {
    this.#zero = Buffer.alloc(piece);
  }

  async run(restore: (sink: Writable, signal: AbortSignal) => Promise<unknown>): Promise<void> {
    // Writable runs write() and final() one at a time, in order: pieces get their offsets in order.
    const sink = new Writable({
      highWaterMark: 4 << 20,
      write: (chunk: Buffer, _enc, cb) => {
        if (this.#failure) return cb(); // swallowed: the restore is being aborted
        this.#carry.push(chunk);
        this.#carried += chunk.length;
        void this.#drain(false).then(() => cb());
      },
      final: (cb) => void this.#drain(true).then(() => cb()),
    });
    try {
      await restore(sink, this.#stop.signal);
      await new Promise<void>((resolve, reject) => {
        sink.once('finish', resolve);
        sink.once('error', reject);
        sink.end();
      });
    } catch (e) {
      this.#failure ??= e;
    }
    while (this.#running.size) await Promise.race(this.#running);
    if (this.#failure) throw this.#failure;
  }

  /** Issues every whole piece held (and the tail at the end), waiting while the window is full. */
  async #drain(end: boolean) {
    while (this.#carried >= this.piece || (end && this.#carried > 0)) {
      const all = this.#carry.length === 1 ? this.#carry[0]! : Buffer.concat(this.#carry);
      const n = Math.min(this.piece, all.length);
      const data = all.subarray(0, n);
      this.#carry = all.length > n ? [all.subarray(n)] : [];
      this.#carried -= n;
      while (this.#running.size >= WINDOW) await Promise.race(this.#running);
      if (this.#failure) return;
      const offset = this.#offset;
      this.#offset += n;
      const p: Promise<void> = this.#compare(offset, data, this.#readsAsZero(offset, n))
        .catch((e: unknown) => {
          this.#failure ??= e;
          this.#stop.abort(e);
        })
        .finally(() => this.#running.delete(p));
      this.#running.add(p);
    }
  }

  async #compare(offset: number, data: Buffer, targetZero: boolean) {
    const backupZero = data.equals(this.#zero.subarray(0, data.length));
    if (backupZero && targetZero) return;
    if (!targetZero) {
      const now = await Promise.race([this.nbd.read(offset, data.length), this.conn.lost]);
      this.readBytes += data.length;
      if (now.equals(data)) return;
    }
    await Promise.race([this.nbd.write(offset, data), this.conn.lost]);
    this.writtenBytes += data.length;
  }

  /** Whether the new disk's chain reads [offset, offset+length) as zeros (offsets only grow). */
  #readsAsZero(offset: number, length: number): boolean {
    while (this.#zeroIndex < this.zeros.length && this.zeros[this.#zeroIndex]!.offset + this.zeros[this.#zeroIndex]!.length <= offset) this.#zeroIndex++;
    const z = this.zeros[this.#zeroIndex];
    return !!z && z.offset <= offset && z.offset + z.length >= offset + length;
  }
}
