// How a restore's worker threads write what they restored to a file or device: the page-aligned
// part of each group through a descriptor of the same file opened O_DIRECT (no copy into the page
// cache, and no page cache filled with a disk nobody reads back soon), the rest through the
// ordinary descriptor. A file system that refuses O_DIRECT writes (EINVAL) gets buffered writes
// from then on.
import { write as fsWrite } from 'node:fs';
import { promisify } from 'node:util';

/** O_DIRECT's alignment (offset, length, memory): 4096 covers 512- and 4096-byte sector devices. */
export const DIRECT_ALIGN = 4096;

type Write = (fd: number, buf: Buffer, offset: number, length: number, position: number) => Promise<{ bytesWritten: number }>;

export class DirectWrites {
  /** Set once an O_DIRECT write was refused. */
  refused = false;

  constructor(private write: Write = promisify(fsWrite)) {}

  /** Writes `buf` (its memory DIRECT_ALIGN-aligned) at `position`: its aligned part through
   *  `direct` when there is one, the rest through `fd`. */
  async writeOut(fd: number, direct: number | undefined, buf: Buffer, position: number): Promise<void> {
    let o = 0;
    if (direct !== undefined && !this.refused && position % DIRECT_ALIGN === 0) {
      const aligned = buf.length - (buf.length % DIRECT_ALIGN);
      try {
        while (o < aligned) o += (await this.write(direct, buf, o, aligned - o, position + o)).bytesWritten;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EINVAL') throw e;
        this.refused = true;
      }
    }
    while (o < buf.length) o += (await this.write(fd, buf, o, buf.length - o, position + o)).bytesWritten;
  }
}
