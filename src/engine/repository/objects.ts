// Sealed metadata objects (index, manifests, backup records): nonce ‖ AES-256-GCM(zstd(plain)) ‖
// tag with AAD = "strongbox:" + object key, so an object moved or renamed fails authentication.
import { compress, decompress } from 'zstd-napi';
import type { Backend } from '../destinations/backend.ts';
import { RepositoryError } from './errors.ts';
import { open, seal } from './keys.ts';

export async function putSealed(backend: Backend, dataKey: Buffer, key: string, plain: Buffer): Promise<number> {
  const bytes = seal(dataKey, compress(plain, { compressionLevel: 3 }), Buffer.from(`strongbox:${key}`));
  await backend.put(key, bytes);
  return bytes.length;
}

export function openSealed(location: string, dataKey: Buffer, key: string, bytes: Buffer): Buffer {
  let z: Buffer;
  try {
    z = open(dataKey, bytes, Buffer.from(`strongbox:${key}`));
  } catch (e) {
    throw RepositoryError.damaged(location, key, 'authentication failed: altered, truncated or not written with this key', e);
  }
  try {
    return decompress(z);
  } catch (e) {
    throw RepositoryError.damaged(location, key, 'cannot be decompressed', e);
  }
}

export async function getSealed(backend: Backend, dataKey: Buffer, key: string): Promise<Buffer> {
  let bytes: Buffer;
  try {
    bytes = await backend.get(key);
  } catch (e) {
    if ((e as { code?: string }).code === 'NOT_FOUND') throw RepositoryError.missingObject(backend.location, key, 'it is referenced but does not exist');
    throw e;
  }
  return openSealed(backend.location, dataKey, key, bytes);
}
