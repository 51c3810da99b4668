// Rebuild a disk image file from a DiskSource (what a restore does with full + incrementals) and
// hash files, to prove round trips byte-identical.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, open, rm } from 'node:fs/promises';
import type { StrategyDiskSource as DiskSource } from '../../src/engine/strategies/disk-source.ts';

export interface ApplyStats {
  extents: number;
  dataBytes: number;
  zeroBytes: number;
}

/** Write `source` into `path`: a fresh sparse file for a full read, `base` + changes for an incremental. */
export async function applySource(path: string, source: DiskSource, base?: string): Promise<ApplyStats> {
  await rm(path, { force: true });
  if (source.mode === 'incremental') {
    if (!base) throw new Error('incremental source needs a base image');
    await copyFile(base, path);
  }
  const fh = await open(path, source.mode === 'incremental' ? 'r+' : 'w');
  const stats: ApplyStats = { extents: 0, dataBytes: 0, zeroBytes: 0 };
  try {
    await fh.truncate(source.size);
    let end = 0;
    for await (const e of source.extents()) {
      if (e.offset < end) throw new Error(`extents out of order at ${e.offset}`);
      end = e.offset + e.length;
      stats.extents++;
      if (e.data) {
        if (e.data.length !== e.length) throw new Error(`extent ${e.offset}: ${e.data.length} bytes for length ${e.length}`);
        await fh.write(e.data, 0, e.length, e.offset);
        stats.dataBytes += e.length;
      } else {
        if (source.mode === 'incremental') await fh.write(Buffer.alloc(e.length), 0, e.length, e.offset);
        stats.zeroBytes += e.length;
      }
    }
  } finally {
    await fh.close();
  }
  return stats;
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}
