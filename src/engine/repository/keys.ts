// Keys and sealing. The master key (STRONGBOX_MASTER_KEY, 32 bytes) never encrypts data itself:
// it wraps a random data key (AES-256-GCM) and a random id key (HMAC-SHA256 chunk ids) stored in
// keys/<name>. Rotating the master key therefore rewrites one small object, not the data.
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { ID_BYTES, NONCE_BYTES, TAG_BYTES } from './format.ts';
import { RepositoryError } from './errors.ts';

export type RepositoryKeys = { dataKey: Buffer; idKey: Buffer };

export type KeyFile = {
  version: 1;
  algorithm: 'aes-256-gcm';
  kdf: 'hkdf-sha256';
  repository: string;
  created: string;
  /** HMAC of a constant under the wrapping key: tells "wrong key" from "damaged key file". */
  check: string;
  /** base64(nonce ‖ AES-256-GCM(dataKey ‖ idKey) ‖ tag), AAD = "strongbox:key:" + repository id. */
  wrapped: string;
};

export function parseMasterKey(text: string | undefined): Buffer {
  if (!text) throw RepositoryError.badMasterKey('it is not set');
  const t = text.trim();
  let key: Buffer;
  if (/^[0-9a-fA-F]{64}$/.test(t)) key = Buffer.from(t, 'hex');
  else if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(t)) key = Buffer.from(t, 'base64');
  else throw RepositoryError.badMasterKey('it is neither hex nor base64');
  if (key.length !== 32) throw RepositoryError.badMasterKey(`it decodes to ${key.length} bytes`);
  return key;
}

function wrappingKey(masterKey: Buffer, repositoryId: string): Buffer {
  return Buffer.from(hkdfSync('sha256', masterKey, Buffer.from(repositoryId), 'strongbox key wrapping v1', 32));
}

function checkValue(kek: Buffer): string {
  return createHmac('sha256', kek).update('strongbox key check v1').digest('hex').slice(0, 32);
}

export function createKeyFile(masterKey: Buffer, repositoryId: string): { file: KeyFile; keys: RepositoryKeys } {
  const keys = { dataKey: randomBytes(32), idKey: randomBytes(32) };
  const kek = wrappingKey(masterKey, repositoryId);
  const wrapped = seal(kek, Buffer.concat([keys.dataKey, keys.idKey]), Buffer.from(`strongbox:key:${repositoryId}`));
  const file: KeyFile = {
    version: 1,
    algorithm: 'aes-256-gcm',
    kdf: 'hkdf-sha256',
    repository: repositoryId,
    created: new Date().toISOString(),
    check: checkValue(kek),
    wrapped: wrapped.toString('base64'),
  };
  return { file, keys };
}

/** Opens a key file; WRONG_KEY when the master key is not this repository's, DAMAGED when the file is. */
export function openKeyFile(location: string, object: string, bytes: Buffer, masterKey: Buffer, repositoryId: string): RepositoryKeys {
  let file: KeyFile;
  try {
    file = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw RepositoryError.damaged(location, object, 'not valid JSON', e);
  }
  if (file?.version !== 1 || typeof file.wrapped !== 'string' || typeof file.check !== 'string') {
    throw RepositoryError.damaged(location, object, 'unknown key file layout');
  }
  if (file.repository !== repositoryId) throw RepositoryError.damaged(location, object, 'it belongs to another repository');
  const kek = wrappingKey(masterKey, repositoryId);
  if (checkValue(kek) !== file.check) throw RepositoryError.wrongKey(location);
  let plain: Buffer;
  try {
    plain = open(kek, Buffer.from(file.wrapped, 'base64'), Buffer.from(`strongbox:key:${repositoryId}`));
  } catch (e) {
    throw RepositoryError.damaged(location, object, 'the wrapped keys fail authentication', e);
  }
  if (plain.length !== 64) throw RepositoryError.damaged(location, object, 'wrapped keys have the wrong length');
  return { dataKey: plain.subarray(0, 32), idKey: plain.subarray(32, 64) };
}

/** nonce(12) ‖ ciphertext ‖ tag(16). Random nonces: every sealed value is encrypted exactly once. */
export function seal(key: Buffer, plain: Uint8Array, aad: Uint8Array): Buffer {
  const out = Buffer.allocUnsafeSlow(NONCE_BYTES + plain.length + TAG_BYTES);
  const nonce = randomBytes(NONCE_BYTES);
  nonce.copy(out, 0);
  const c = createCipheriv('aes-256-gcm', key, nonce);
  c.setAAD(aad);
  let o = NONCE_BYTES;
  o += c.update(plain).copy(out, o);
  o += c.final().copy(out, o);
  c.getAuthTag().copy(out, o);
  return out;
}

/** seal, written into `out` (room for plain + 28 bytes). `plain` may lie in `out`: it is read
 *  whole before `out` is written. Returns the length. */
export function sealInto(key: Buffer, plain: Uint8Array, aad: Uint8Array, out: Buffer): number {
  if (out.length < NONCE_BYTES + plain.length + TAG_BYTES) throw new Error('no room for the sealed value');
  const nonce = randomBytes(NONCE_BYTES);
  const c = createCipheriv('aes-256-gcm', key, nonce);
  c.setAAD(aad);
  const body = c.update(plain);
  const last = c.final();
  let o = nonce.copy(out, 0);
  o += body.copy(out, o);
  o += last.copy(out, o);
  o += c.getAuthTag().copy(out, o);
  return o;
}

/** Inverse of seal; throws when the bytes or the AAD were altered. */
export function open(key: Buffer, sealed: Uint8Array, aad: Uint8Array): Buffer {
  if (sealed.length < NONCE_BYTES + TAG_BYTES) throw new Error('sealed value too short');
  const buf = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.length);
  const d = createDecipheriv('aes-256-gcm', key, buf.subarray(0, NONCE_BYTES));
  d.setAAD(aad);
  d.setAuthTag(buf.subarray(buf.length - TAG_BYTES));
  const a = d.update(buf.subarray(NONCE_BYTES, buf.length - TAG_BYTES));
  const b = d.final();
  return b.length ? Buffer.concat([a, b]) : a;
}

export function chunkId(idKey: Buffer, plain: Uint8Array): Buffer {
  return createHmac('sha256', idKey).update(plain).digest();
}

export function macHex(idKey: Buffer, data: string): string {
  return createHmac('sha256', idKey).update(data).digest('hex');
}

export function equalHex(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y);
}

export const ZERO_ID = Buffer.alloc(ID_BYTES);
