// Volumes, snapshots and images as real files. Volumes live where Cinder's NFS driver keeps
// them: `<mount_point_base>/<md5 of the export>/volume-<id>`, sparse. A snapshot is a plain
// sparse copy of the volume at snapshot time (real Cinder keeps a qcow2 overlay; a copy gives
// a proxy the same bytes), and a volume from a snapshot is a sparse copy of that.
import { createHash } from 'node:crypto';
import { mkdirSync, symlinkSync, rmSync, existsSync } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import path from 'node:path';

const BLOCK = 1 << 20;

export class SimFiles {
  readonly exportName: string;
  readonly mountPointBase: string;
  readonly volumeDir: string;
  readonly imageDir: string;

  constructor(readonly root: string, readonly byIdRoot?: string) {
    this.exportName = `127.0.0.1:${path.join(root, 'export')}`;
    this.mountPointBase = path.join(root, 'mnt');
    this.volumeDir = path.join(this.mountPointBase, createHash('md5').update(this.exportName).digest('hex'));
    this.imageDir = path.join(root, 'images');
    mkdirSync(this.volumeDir, { recursive: true });
    mkdirSync(this.imageDir, { recursive: true });
    if (byIdRoot) mkdirSync(byIdRoot, { recursive: true });
  }

  volumeName(id: string): string {
    return `volume-${id}`;
  }
  volumePath(id: string): string {
    return path.join(this.volumeDir, this.volumeName(id));
  }
  snapshotPath(id: string): string {
    return path.join(this.volumeDir, `snapshot-${id}`);
  }
  imagePath(id: string): string {
    return path.join(this.imageDir, id);
  }

  /** Creates the sparse file of a volume when it does not exist yet (seeded volumes are lazy). */
  async ensureVolume(id: string, sizeBytes: number): Promise<string> {
    const p = this.volumePath(id);
    if (!existsSync(p)) {
      const fh = await open(p, 'wx');
      try {
        await fh.truncate(sizeBytes);
      } finally {
        await fh.close();
      }
    }
    return p;
  }

  async writeAt(file: string, offset: number, data: Buffer): Promise<void> {
    const fh = await open(file, 'r+');
    try {
      await fh.write(data, 0, data.length, offset);
    } finally {
      await fh.close();
    }
  }

  /** Copies a file keeping its holes: all-zero blocks are not written. */
  async sparseCopy(from: string, to: string, sizeBytes?: number): Promise<void> {
    const src = await open(from, 'r');
    const dst = await open(to, 'w');
    try {
      const { size } = await src.stat();
      await dst.truncate(Math.max(size, sizeBytes ?? 0));
      const buf = Buffer.alloc(BLOCK);
      for (let pos = 0; pos < size; pos += BLOCK) {
        const { bytesRead } = await src.read(buf, 0, BLOCK, pos);
        const chunk = buf.subarray(0, bytesRead);
        if (chunk.some((b) => b !== 0)) await dst.write(chunk, 0, bytesRead, pos);
      }
    } finally {
      await src.close();
      await dst.close();
    }
  }

  async remove(file: string): Promise<void> {
    await rm(file, { force: true });
  }

  /** Block-device mode: `<byIdRoot>/virtio-<first 20 chars of the volume ID>` → the file. */
  linkById(volumeId: string): string | undefined {
    if (!this.byIdRoot) return undefined;
    const link = path.join(this.byIdRoot, `virtio-${volumeId.slice(0, 20)}`);
    rmSync(link, { force: true });
    symlinkSync(this.volumePath(volumeId), link);
    return link;
  }

  unlinkById(volumeId: string): void {
    if (this.byIdRoot) rmSync(path.join(this.byIdRoot, `virtio-${volumeId.slice(0, 20)}`), { force: true });
  }
}
