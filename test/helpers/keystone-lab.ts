// The real Keystone lab (test/labs/keystone.sh): started once per machine — the script holds a
// flock, so parallel test files wait for one set-up and then reuse the running server.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const script = fileURLToPath(new URL('../labs/keystone.sh', import.meta.url));

export type KeystoneLab = {
  url: string;
  region: string;
  region2: string;
  admin: { username: string; password: string; domain: string; project: string };
  lab2: { username: string; password: string; domain: string; project: string };
};

let started: Promise<KeystoneLab> | undefined;

export function keystoneLab(): Promise<KeystoneLab> {
  started ??= (async () => {
    const { stdout } = await promisify(execFile)('bash', [script, 'ensure'], { timeout: 900_000, maxBuffer: 10 << 20 });
    const env = Object.fromEntries(stdout.split('\n').filter((l) => /^[A-Z0-9_]+=/.test(l)).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    const need = (k: string) => {
      if (!env[k]) throw new Error(`keystone lab did not print ${k}`);
      return env[k];
    };
    return {
      url: need('KEYSTONE_URL'),
      region: need('KEYSTONE_REGION'),
      region2: need('KEYSTONE_REGION2'),
      admin: { username: need('KEYSTONE_ADMIN_USER'), password: need('KEYSTONE_ADMIN_PASSWORD'), domain: need('KEYSTONE_ADMIN_DOMAIN'), project: need('KEYSTONE_ADMIN_PROJECT') },
      lab2: { username: need('KEYSTONE_LAB2_USER'), password: need('KEYSTONE_LAB2_PASSWORD'), domain: need('KEYSTONE_LAB2_DOMAIN'), project: need('KEYSTONE_LAB2_PROJECT') },
    };
  })();
  return started;
}
