// RESTORE of a Nova root disk onto a server Nova booted from an existing image (the backup's base
// image or a mapped one), instead of uploading the whole disk to Glance: with the server stopped,
// its root disk file is served writable by qemu-nbd on the hypervisor and reached through the SSH
// connection; per chunk of the backup's disk what the new disk holds there is read and its keyed
// chunk id compared with the backup's: only a chunk that differs is fetched from the destination
// and written. Ranges both sides read as zeros (a zero chunk of the backup, a range the new disk's
// chain reads as zeros) are neither read nor written. Every chunk is checked, so the result is
// the backed-up disk whatever image the server was booted from: a wrong image costs transfers,
// never data.
import type { EntityManager } from '@mikro-orm/postgresql';
import { setTimeout as sleep } from 'node:timers/promises';
import { Hypervisor } from '../../../db/entities/index.ts';
import type { SecretBox } from '../../../db/secrets.ts';
import type { NovaServer } from '../../../openstack/index.ts';
import type { DiskChunks, Repository } from '../../repository/index.ts';
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
  /** Stored (compressed, encrypted) bytes fetched from the destination: the differing chunks only. */
  fetchedBytes: number;
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
  let served = false;
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

    served = true; // from here on a failure stops qemu-nbd (no pid file yet: nothing to stop)
    await conn.run(['qemu-nbd', '--fork', `--pid-file=${pidFile}`, '-f', top.format, '-k', socket, root.source], 'TRANSFER_FAILED');
    nbd = await Promise.race([NbdClient.connect(await conn.forwardUnix(socket)), conn.lost]);
    if (nbd.readOnly) throw new StrategyError('TRANSFER_FAILED', `qemu-nbd serves ${root.source} read-only`);
    if (nbd.size < size) throw new StrategyError('TRANSFER_FAILED', `${root.source} is ${nbd.size} bytes, the backup's disk ${size}`);

    const chunks = await o.repo.diskChunks(o.from.repositoryBackupId, o.from.position, o.signal);
    let diff: DiffWriter;
    try {
      if (chunks.size !== size) throw new StrategyError('INVALID_ARGUMENT', `the backup's disk is ${chunks.size} bytes, its row says ${size}`);
      diff = new DiffWriter(nbd, chunks, zeros, conn);
      await diff.run(o.signal, o.onProgress);
    } finally {
      await chunks.close();
    }
    await Promise.race([nbd.flush(), conn.lost]);
    await nbd.close();
    nbd = null;
    await stopQemuNbd(conn, pidFile, socket);
    served = false;
    return { hypervisor: hv.hostname, sizeBytes: size, readBytes: diff.readBytes, writtenBytes: diff.writtenBytes, fetchedBytes: chunks.fetchedBytes, grownFrom, largerBy: Math.max(0, top.virtualSize - size) };
  } finally {
    await nbd?.close();
    if (served) await stopQemuNbd(conn, pidFile, socket).catch(() => {});
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
 * Chunk by chunk of the backup's disk, a few in flight: what the new disk holds there is read
 * (unless its chain reads zeros there) and compared by keyed chunk id; only a chunk that differs
 * is fetched from the destination and written. A zero chunk over a range that reads as zeros
 * costs nothing; over data, the data is read and zeros written only if it is not all zero.
 */
class DiffWriter {
  readBytes = 0;
  writtenBytes = 0;
  #zeroIndex = 0;

  constructor(
    private nbd: NbdClient,
    private chunks: DiskChunks,
    private zeros: Extent[],
    private conn: HypervisorConnection,
  ) {}

  async run(signal: AbortSignal, onProgress?: (p: { bytesDone: number; bytesTotal: number }) => void): Promise<void> {
    const c = this.chunks;
    const running = new Set<Promise<void>>();
    let failure: unknown = null;
    let done = 0;
    let reported = 0;
    for (let i = 0; i < c.count && !failure; i++) {
      if (signal.aborted) failure = signal.reason ?? new StrategyError('ABORTED', 'restore aborted');
      while (running.size >= WINDOW) await Promise.race(running);
      if (failure) break;
      const offset = i * c.chunkSize;
      const length = c.length(i);
      const p: Promise<void> = this.#chunk(i, offset, length, this.#readsAsZero(offset, length))
        .then(() => {
          done += length;
          if (onProgress && (Date.now() - reported > 100 || done === c.size)) {
            reported = Date.now();
            onProgress({ bytesDone: done, bytesTotal: c.size });
          }
        })
        .catch((e: unknown) => {
          failure ??= e;
        })
        .finally(() => running.delete(p));
      running.add(p);
    }
    while (running.size) await Promise.race(running);
    if (failure) throw failure;
  }

  async #chunk(i: number, offset: number, length: number, targetZero: boolean) {
    const zero = this.chunks.isZero(i);
    if (zero && targetZero) return;
    if (!targetZero) {
      const now = await Promise.race([this.nbd.read(offset, length), this.conn.lost]);
      this.readBytes += length;
      if (zero ? isAllZero(now) : this.chunks.matches(i, now)) return;
    }
    const data = zero ? Buffer.alloc(length) : await this.chunks.read(i);
    await Promise.race([this.nbd.write(offset, data), this.conn.lost]);
    this.writtenBytes += length;
  }

  /** Whether the new disk's chain reads [offset, offset+length) as zeros (offsets only grow). */
  #readsAsZero(offset: number, length: number): boolean {
    while (this.#zeroIndex < this.zeros.length && this.zeros[this.#zeroIndex]!.offset + this.zeros[this.#zeroIndex]!.length <= offset) this.#zeroIndex++;
    const z = this.zeros[this.#zeroIndex];
    return !!z && z.offset <= offset && z.offset + z.length >= offset + length;
  }
}

const ZEROS = Buffer.alloc(1 << 20);
function isAllZero(b: Buffer): boolean {
  for (let o = 0; o < b.length; o += ZEROS.length) {
    const n = Math.min(ZEROS.length, b.length - o);
    if (!b.subarray(o, o + n).equals(ZEROS.subarray(0, n))) return false;
  }
  return true;
}
