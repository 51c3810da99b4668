// The backup record (backups/<id>): what a backup is. Written LAST, with one atomic put, after its
// packs, index objects and manifests are stored — so a backup is visible only when complete.
// Sealed JSON (objects.ts).

export type DiskRecord = {
  /** The name the caller gave the disk (device name, volume id, file path). */
  name: string;
  size: number;
  chunkSize: number;
  /** Object key of the manifest (manifests/<name>). */
  manifest: string;
  /** Bytes read from the source. */
  readBytes: number;
  /** Bytes of zero chunks (not stored). */
  zeroBytes: number;
  /** Bytes taken unchanged from the parent backup's manifest without reading. */
  parentBytes: number;
  /** Plain bytes of chunks new to the repository, and their stored (compressed+encrypted) size. */
  newBytes: number;
  storedBytes: number;
};

export type BackupRecord = {
  version: 1;
  id: string;
  /** ISO time the backup started (its point in time). */
  time: string;
  finished: string;
  tag: string | null;
  parent: string | null;
  disks: DiskRecord[];
  /** Arbitrary instance metadata (flavor, networks, volumes…) from the caller. */
  metadata: unknown;
};

export function encodeRecord(r: BackupRecord): Buffer {
  return Buffer.from(JSON.stringify(r));
}

export function decodeRecord(buf: Buffer): BackupRecord {
  const r = JSON.parse(buf.toString('utf8')) as BackupRecord;
  if (r?.version !== 1 || typeof r.id !== 'string' || !Array.isArray(r.disks)) throw new Error('not a backup record');
  return r;
}
