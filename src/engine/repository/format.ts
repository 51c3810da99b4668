// Repository format constants and object layout. docs/repository-format.md is the prose version;
// the two must agree.
import { randomBytes } from 'node:crypto';

export const FORMAT_NAME = 'strongbox-repository';
export const FORMAT_VERSION = 1;

/** 256 KiB, from bench:repository on the 1 GiB images (docs/repository-format.md, "Chunk size"):
 *  day2 added 104 / 135 / 160 MB at 256 KiB / 512 KiB / 1 MiB chunks (restic: 180 MB), clone
 *  93 / 100 / 113 MB (restic: 146), at the same CPU cost per GB. */
export const DEFAULT_CHUNK_SIZE = 256 << 10;
export const MIN_CHUNK_SIZE = 64 << 10;
export const MAX_CHUNK_SIZE = 16 << 20;
/** Packs are closed once they reach this size, so the average object is ≥ 8 MiB. */
export const DEFAULT_PACK_SIZE = 16 << 20;
export const DEFAULT_ZSTD_LEVEL = 1;

export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;
export const ID_BYTES = 32;
/** Bytes sealing adds to a value (nonce and tag). */
export const SEAL_OVERHEAD = NONCE_BYTES + TAG_BYTES;

/** Blob flags (index entry / pack trailer). */
export const FLAG_ZSTD = 1;

export const layout = {
  config: 'config',
  keys: 'keys/',
  data: 'data/',
  index: 'index/',
  manifests: 'manifests/',
  backups: 'backups/',
  locks: 'locks/',
  pack: (packId: string) => `data/${packId.slice(0, 2)}/${packId}`,
  indexObject: (name: string) => `index/${name}`,
  manifest: (name: string) => `manifests/${name}`,
  backup: (id: string) => `backups/${id}`,
  lock: (name: string) => `locks/${name}`,
  key: (name: string) => `keys/${name}`,
};

export function randomName(bytes = 16): string {
  return randomBytes(bytes).toString('hex');
}

/** Sortable, unique backup id: UTC time + 8 random hex digits, e.g. 20261127T110000Z-1a2b3c4d. */
export function newBackupId(now = new Date()): string {
  const t = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `${t}-${randomBytes(4).toString('hex')}`;
}

export type RepositoryConfig = {
  format: typeof FORMAT_NAME;
  version: number;
  id: string;
  created: string;
  chunkSize: number;
  packSize: number;
  compression: { algorithm: 'zstd'; level: number };
  encryption: { algorithm: 'aes-256-gcm'; ids: 'hmac-sha256' };
  /** HMAC-SHA256 (id key) over the config without this field: detects a tampered config. */
  mac?: string;
};
