// Secrets at rest (cloud passwords, SSH passwords, Ceph keyrings, S3/Swift keys, signing keys):
// AES-256-GCM under the master key, stored as "v1:<base64 nonce|tag|ciphertext>". The master
// key comes from STRONGBOX_MASTER_KEY or is generated into the data folder on first start.
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Sealed } from './entities/base.ts';

export function parseMasterKey(text: string): Buffer {
  const t = text.trim();
  const key = /^[0-9a-fA-F]{64}$/.test(t) ? Buffer.from(t, 'hex') : Buffer.from(t, 'base64');
  if (key.length !== 32) throw new Error('STRONGBOX_MASTER_KEY must be 32 bytes, as 64 hex digits or base64');
  return key;
}

/** The configured master key, or the one in `<dataDir>/master.key` (created on first use). */
export function loadMasterKey(opts: { masterKey?: string; dataDir: string }): Buffer {
  if (opts.masterKey) return parseMasterKey(opts.masterKey);
  const file = path.join(opts.dataDir, 'master.key');
  if (!existsSync(file)) {
    mkdirSync(opts.dataDir, { recursive: true });
    writeFileSync(file, randomBytes(32).toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
  }
  return parseMasterKey(readFileSync(file, 'utf8'));
}

export class SecretBox {
  readonly #key: Buffer;
  constructor(masterKey: Buffer) {
    if (masterKey.length !== 32) throw new Error('master key must be 32 bytes');
    this.#key = masterKey;
  }

  /** A 32-byte key for one purpose, derived (HKDF-SHA256) from the master key, so the master key
   *  itself never leaves this box. E.g. the key that opens the destinations' repository key files. */
  deriveKey(purpose: string): Buffer {
    return Buffer.from(hkdfSync('sha256', this.#key, Buffer.alloc(0), `strongbox:${purpose}`, 32));
  }

  seal(plain: string): Sealed {
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#key, nonce);
    const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return `v1:${Buffer.concat([nonce, cipher.getAuthTag(), body]).toString('base64')}`;
  }

  open(sealed: Sealed): string {
    if (!sealed.startsWith('v1:')) throw new Error('not a sealed secret');
    const raw = Buffer.from(sealed.slice(3), 'base64');
    const decipher = createDecipheriv('aes-256-gcm', this.#key, raw.subarray(0, 12));
    decipher.setAuthTag(raw.subarray(12, 28));
    return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
  }
}
