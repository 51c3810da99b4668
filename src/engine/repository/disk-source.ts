// Disk sources: what a backup reads. Strategies (Cinder attachment, Ceph RBD, QCOW2 over SSH)
// implement DiskSource; FileDiskSource covers raw image files and block devices.
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import { promisify } from 'node:util';
import { RepositoryError } from './errors.ts';

/** A byte range of a disk. */
export type Extent = { offset: number; length: number };

export interface DiskSource {
  /** Logical size of the disk in bytes. */
  readonly size: number;
  /** Exactly `length` bytes from `offset` (fewer only at the end of the disk). `into`, when given,
   *  is a buffer of `length` bytes to read into (and return) if the source can; a buffer of the
   *  source's own is copied there. */
  read(offset: number, length: number, into?: Buffer): Promise<Buffer>;
  /** A file descriptor the backup's worker threads may read the disk from themselves (pread at
   *  any offset), when the disk is a local file or block device: the bytes then never pass
   *  through the main thread. Without it the backup reads through `read`. */
  readonly fd?: number;
  /** Extents that may hold data; everything outside is zero and is not read. Optional. */
  allocatedExtents?(): Promise<Extent[] | null>;
  close?(): Promise<void>;
}

/** A raw image file or a block device. Holes of sparse files are found with FIEMAP (filefrag). */
export class FileDiskSource implements DiskSource {
  private constructor(
    readonly path: string,
    private fh: fs.FileHandle,
    readonly size: number,
    private isFile: boolean,
  ) {}

  static async open(path: string): Promise<FileDiskSource> {
    let fh: fs.FileHandle;
    try {
      fh = await fs.open(path, 'r');
    } catch (e) {
      throw RepositoryError.sourceNotFound(path, e);
    }
    const st = await fh.stat();
    let size = st.size;
    if (st.isBlockDevice()) {
      // stat gives 0 for block devices; the end offset is the size.
      size = await blockDeviceSize(path);
    } else if (!st.isFile()) {
      await fh.close();
      throw RepositoryError.sourceNotFound(path, new Error('not a regular file or block device'));
    }
    return new FileDiskSource(path, fh, size, st.isFile());
  }

  get fd(): number {
    return this.fh.fd;
  }

  async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    const n = Math.max(0, Math.min(length, this.size - offset));
    const buf = into && into.length >= n ? into.subarray(0, n) : Buffer.allocUnsafeSlow(n);
    let done = 0;
    while (done < n) {
      const { bytesRead } = await this.fh.read(buf, done, n - done, offset + done);
      if (bytesRead === 0) throw new Error(`${this.path}: unexpected end of disk at ${offset + done}`);
      done += bytesRead;
    }
    return buf;
  }

  /**
   * Allocated extents of a sparse file through FIEMAP (e2fsprogs' `filefrag -e`), because Node has
   * no lseek(SEEK_DATA/SEEK_HOLE) binding. Null (read everything, zero-check each chunk) for block
   * devices or when filefrag is unavailable or its output is not understood.
   */
  async allocatedExtents(): Promise<Extent[] | null> {
    if (!this.isFile) return null;
    try {
      const { stdout } = await promisify(execFile)('filefrag', ['-e', '-s', '-b1', this.path], { maxBuffer: 64 << 20 });
      return parseFilefrag(stdout, this.size);
    } catch {
      return null;
    }
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

/** Parses `filefrag -e -b1` output; unwritten (fallocated) extents read as zeros and are dropped. */
export function parseFilefrag(out: string, size: number): Extent[] | null {
  const extents: Extent[] = [];
  let sawHeader = false;
  for (const line of out.split('\n')) {
    if (/^\s*ext:\s+logical_offset/.test(line)) {
      sawHeader = true;
      continue;
    }
    const m = /^\s*\d+:\s+(\d+)\.\.\s*(\d+):.*?:\s*(\d+):\s*(\d*):?\s*(.*)$/.exec(line);
    if (!m) continue;
    if (/unwritten/.test(m[5] ?? '')) continue;
    const start = Number(m[1]);
    const end = Number(m[2]) + 1;
    if (start >= size) continue;
    extents.push({ offset: start, length: Math.min(end, size) - start });
  }
  if (!sawHeader) return null;
  return mergeExtents(extents);
}

export function mergeExtents(list: Extent[]): Extent[] {
  const sorted = [...list].filter((e) => e.length > 0).sort((a, b) => a.offset - b.offset);
  const out: Extent[] = [];
  for (const e of sorted) {
    const last = out[out.length - 1];
    if (last && e.offset <= last.offset + last.length) {
      last.length = Math.max(last.length, e.offset + e.length - last.offset);
    } else out.push({ ...e });
  }
  return out;
}

async function blockDeviceSize(path: string): Promise<number> {
  const fh = await fs.open(path, 'r');
  try {
    // Read the kernel's view of the size (bytes = 512-byte sectors × 512).
    const name = (await fs.realpath(path)).split('/').pop()!;
    const sectors = await fs.readFile(`/sys/class/block/${name}/size`, 'utf8').catch(() => '0');
    return Number(sectors.trim()) * 512;
  } finally {
    await fh.close();
  }
}
