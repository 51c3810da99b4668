// "Download image from Glance": the base image of an image-booted instance, stored in the
// repository as an extra disk of a FULL backup (kind IMAGE, named by the image ID), with the
// properties a restore needs to create it again in a cloud that lacks it.
//
// Choice for incrementals: the image is not downloaded again when an earlier backup of the chain
// holds the same image ID — the incremental's metadata names that backup (`heldBy`). It is
// downloaded (even on an incremental) when no backup of the chain holds it: the cloud setting
// was just turned on, or the instance was rebuilt on another image.
//
// Both directions stream: the download is read by the repository as it arrives (its md5
// `checksum` and `os_hash_value` are checked on the last byte, before the backup record is
// written), and a restore's bytes go from the repository (every chunk's keyed id checked as it
// is restored) straight into Glance's upload, whose hash is compared with the one recorded.
import { createHash, type Hash } from 'node:crypto';
import { PassThrough, Writable } from 'node:stream';
import type { EntityManager } from '@mikro-orm/postgresql';
import { Backup, BackupDisk } from '../../db/entities/index.ts';
import { OpenStackError, waitForStatus, type GlanceImage, type ServiceClients, type WaitOptions } from '../../openstack/index.ts';
import type { DiskInput, Repository } from '../repository/index.ts';
import { StreamDiskSource } from '../repository/stream-source.ts';
import { log } from '../../observability/request-context.ts';

export class GlanceImageError extends Error {}

/** What a backup records of its image (in `metadata.glanceImage`). */
export type BackedUpImage = {
  imageId: string;
  name: string | null;
  diskFormat: string;
  containerFormat: string;
  minDisk: number;
  minRam: number;
  size: number;
  checksum: string | null;
  osHashAlgo: string | null;
  osHashValue: string | null;
  /** Custom properties (os_distro, hw_*, …) as Glance lists them. */
  properties: Record<string, unknown>;
  /** This backup holds the image as its disk at this position… */
  position?: number;
  /** …or an earlier backup of the chain does (its Strongbox backup ID). */
  heldBy?: string;
};

// Glance's own fields: not custom properties, and not settable on a new image.
const CORE = new Set([
  'id', 'name', 'status', 'visibility', 'owner', 'size', 'virtual_size', 'disk_format', 'container_format', 'checksum',
  'os_hash_algo', 'os_hash_value', 'os_hidden', 'min_disk', 'min_ram', 'protected', 'tags', 'created_at', 'updated_at',
  'file', 'self', 'schema', 'direct_url', 'locations', 'stores',
]);

export function customProperties(image: GlanceImage): Record<string, unknown> {
  return Object.fromEntries(Object.entries(image).filter(([k, v]) => !CORE.has(k) && !k.startsWith('os_glance') && v !== undefined));
}

/**
 * The image step of a backup: null when off or the instance has no image; a reference when the
 * chain (the parent) already holds this image; else a disk input streaming the image, checked
 * against Glance's checksums on its last byte. An image Glance no longer has (or not active) is
 * noted in `notCovered` and the backup goes on: the volumes matter more than the base image.
 */
export async function imageForBackup(
  os: ServiceClients,
  o: { enabled: boolean; imageId: string | null; parent: Backup | null; position: number; notCovered: string[]; signal?: AbortSignal },
): Promise<{ record: BackedUpImage; input?: DiskInput } | null> {
  if (!o.enabled || !o.imageId) return null;
  const held = (o.parent?.metadata as { glanceImage?: BackedUpImage } | undefined)?.glanceImage;
  if (held && held.imageId === o.imageId && (held.position !== undefined || held.heldBy)) {
    const { position: _p, ...rest } = held;
    return { record: { ...rest, heldBy: held.heldBy ?? o.parent!.id } };
  }
  let image: GlanceImage;
  try {
    image = await os.glance.getImage(o.imageId, o.signal);
  } catch (e) {
    if (!(e instanceof OpenStackError && e.notFound)) throw e;
    o.notCovered.push(`image ${o.imageId}: not in Glance any more, not downloaded`);
    return null;
  }
  if (image.status !== 'active' || image.size == null) {
    o.notCovered.push(`image ${o.imageId}: ${image.status} in Glance, not downloaded`);
    return null;
  }
  const record: BackedUpImage = {
    imageId: image.id, name: image.name, diskFormat: image.disk_format ?? 'raw', containerFormat: image.container_format ?? 'bare',
    minDisk: image.min_disk ?? 0, minRam: image.min_ram ?? 0, size: image.size, checksum: image.checksum,
    osHashAlgo: image.os_hash_algo, osHashValue: image.os_hash_value, properties: customProperties(image), position: o.position,
  };
  const { stream } = await os.glance.download(image.id, o.signal);
  const check = new ImageHashes(record);
  const source = new StreamDiskSource(stream, image.size, {
    name: `image ${image.id}`,
    onData: (c) => check.update(c),
    onEnd: () => check.verify(`image ${image.id} as downloaded`),
  });
  return { record, input: { name: image.id, source } };
}

/** The md5 `checksum` and the `os_hash_algo` hash Glance computed, recomputed over our bytes. */
class ImageHashes {
  readonly #md5 = createHash('md5');
  readonly #multi: Hash | null;

  constructor(private readonly expected: Pick<BackedUpImage, 'checksum' | 'osHashAlgo' | 'osHashValue'>) {
    this.#multi = expected.osHashAlgo && expected.osHashValue ? createHash(expected.osHashAlgo) : null;
  }

  update(chunk: Buffer) {
    this.#md5.update(chunk);
    this.#multi?.update(chunk);
  }

  verify(what: string) {
    const md5 = this.#md5.digest('hex');
    if (this.expected.checksum && md5 !== this.expected.checksum) throw new GlanceImageError(`${what}: md5 ${md5} is not the image's checksum ${this.expected.checksum}`);
    const h = this.#multi?.digest('hex');
    if (h && h !== this.expected.osHashValue) throw new GlanceImageError(`${what}: ${this.expected.osHashAlgo} does not match the image's os_hash_value`);
  }
}

/** Where the bytes of a backup's image are: this backup or the one named by `heldBy`. */
export async function imageLocation(em: EntityManager, backup: Backup): Promise<{ image: BackedUpImage; repositoryBackupId: string; position: number } | null> {
  const image = (backup.metadata as { glanceImage?: BackedUpImage }).glanceImage;
  if (!image) return null;
  const holder = image.heldBy ? await em.findOne(Backup, { id: image.heldBy, state: 'AVAILABLE' }, { filters: false }) : backup;
  const held = (holder?.metadata as { glanceImage?: BackedUpImage } | undefined)?.glanceImage;
  if (!holder?.repositoryBackupId || held?.position === undefined) return null;
  const row = await em.findOne(BackupDisk, { backup: holder.id, position: held.position, kind: 'IMAGE' }, { filters: false });
  if (!row) return null;
  return { image: held, repositoryBackupId: holder.repositoryBackupId, position: held.position };
}

export type ImageUpload = {
  name: string;
  diskFormat: string;
  containerFormat: string;
  minDisk?: number;
  minRam?: number;
  properties?: Record<string, unknown>;
  /** Expected hashes of the bytes (the backed-up image's); checked against what Glance computed. */
  expected?: Pick<BackedUpImage, 'checksum' | 'osHashAlgo' | 'osHashValue'>;
};

/**
 * Creates a Glance image and uploads one disk of a repository backup into it, streamed; waits
 * for `active` and checks Glance's hashes against the bytes sent. `onCreated` gets the image ID
 * at once, so the caller can delete it if anything later fails; on failure here the image is
 * deleted before the error is rethrown.
 */
export async function uploadImageFromBackup(
  os: ServiceClients,
  repo: Repository,
  from: { repositoryBackupId: string; position: number },
  image: ImageUpload,
  o: { signal: AbortSignal; wait?: Omit<WaitOptions, 'signal'>; verify?: boolean; onCreated?: (id: string) => void; onProgress?: (p: { bytesDone: number; bytesTotal: number }) => void },
): Promise<GlanceImage> {
  const created = await os.glance.createImage({
    ...(image.properties ?? {}), name: image.name, disk_format: image.diskFormat, container_format: image.containerFormat,
    min_disk: image.minDisk ?? 0, min_ram: image.minRam ?? 0, visibility: 'private',
  }, o.signal);
  o.onCreated?.(created.id);
  try {
    const md5 = createHash('md5');
    const sha512 = createHash('sha512');
    const body = new PassThrough({ highWaterMark: 4 << 20 });
    // The repository writes into `sink`, which feeds the upload body with backpressure. If the
    // upload fails, the sink swallows the rest and the restore is aborted: nothing waits forever
    // on a body nobody reads.
    let stalled: (() => void) | null = null;
    let failed = false;
    let sent = 0;
    const sink = new Writable({
      highWaterMark: 1 << 20,
      // The body ends only after the sink's last buffered chunk went into it.
      final(cb) {
        body.end();
        cb();
      },
      write(chunk: Buffer, _enc, cb) {
        if (failed) return cb();
        sent += chunk.length;
        md5.update(chunk);
        sha512.update(chunk);
        if (body.write(chunk)) return cb();
        stalled = cb;
        body.once('drain', () => {
          stalled = null;
          cb();
        });
      },
    });
    const stop = new AbortController();
    const upload = os.glance.upload(created.id, body, AbortSignal.any([o.signal, stop.signal])).catch((e: unknown) => {
      failed = true;
      const cb = stalled as (() => void) | null;
      stalled = null;
      cb?.();
      stop.abort(e);
      throw e;
    });
    upload.catch(() => {});
    let restored: number;
    try {
      restored = (await repo.restore(from.repositoryBackupId, from.position, { kind: 'stream', stream: sink }, {
        signal: AbortSignal.any([o.signal, stop.signal]), onProgress: o.onProgress, verify: o.verify,
      })).bytes;
      // The restore returns once its writes are accepted; the sink may still hold some of them.
      await new Promise<void>((resolve, reject) => sink.end((e?: Error | null) => (e ? reject(e) : resolve())));
    } catch (e) {
      if (!failed) body.destroy(e as Error);
      await upload.catch(() => {});
      throw failed ? await upload.then(() => e, (u: unknown) => u) : e;
    }
    await upload;
    if (sent !== restored) throw new GlanceImageError(`image ${created.id}: ${sent} bytes sent, the backed-up disk has ${restored}`);
    const active = await waitForStatus(`image ${created.id}`, () => os.glance.getImage(created.id, o.signal), (i) => i.status, ['active'], {
      ...o.wait, signal: o.signal, errorStates: ['killed', 'deleted', 'pending_delete'],
    });
    const sentMd5 = md5.digest('hex');
    const sentSha = sha512.digest('hex');
    if (active.checksum && active.checksum !== sentMd5) throw new GlanceImageError(`image ${created.id}: Glance's checksum ${active.checksum} is not the md5 of the bytes sent (${sentMd5})`);
    if (active.os_hash_algo === 'sha512' && active.os_hash_value && active.os_hash_value !== sentSha) {
      throw new GlanceImageError(`image ${created.id}: Glance's os_hash_value is not the sha512 of the bytes sent`);
    }
    const want = image.expected;
    if (want?.checksum && want.checksum !== sentMd5) throw new GlanceImageError(`image ${created.id}: the restored bytes are not the backed-up image (md5 ${sentMd5}, recorded ${want.checksum})`);
    if (want?.osHashAlgo === 'sha512' && want.osHashValue && want.osHashValue !== sentSha) {
      throw new GlanceImageError(`image ${created.id}: the restored bytes are not the backed-up image (sha512 differs from the recorded os_hash_value)`);
    }
    return active;
  } catch (e) {
    await deleteImageQuietly(os, created.id);
    throw e;
  }
}

export async function deleteImageQuietly(os: ServiceClients, id: string): Promise<void> {
  try {
    await os.glance.deleteImage(id);
  } catch (e) {
    if (!(e instanceof OpenStackError && e.notFound)) log().warn({ imageId: id, error: (e as Error).message }, 'could not delete image');
  }
}

/** The image exists in the target cloud and can be booted from (active). */
export async function imageUsable(os: ServiceClients, id: string, signal?: AbortSignal): Promise<boolean> {
  try {
    return (await os.glance.getImage(id, signal)).status === 'active';
  } catch (e) {
    if (e instanceof OpenStackError && e.notFound) return false;
    throw e;
  }
}
