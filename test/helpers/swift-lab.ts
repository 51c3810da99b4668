// The real Swift all-in-one for destination tests: `bash test/labs/swift.sh ensure` installs
// and starts it when needed (idempotent; the script serialises parallel callers with flock),
// and prints KEY=value lines that we parse. Called once per test process.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const script = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../labs/swift.sh');

export type SwiftLab = {
  proxyUrl: string;
  authUrl: string;
  storageUrl: string;
  user: string;
  key: string;
  s3Endpoint: string;
  s3Region: string;
  accessKeyId: string;
  secretAccessKey: string;
};

let lab: Promise<SwiftLab> | undefined;

export function ensureSwiftLab(): Promise<SwiftLab> {
  lab ??= run('bash', [script, 'ensure'], { timeout: 300_000, maxBuffer: 16 * 1024 * 1024 }).then(({ stdout }) => {
    const env = Object.fromEntries(
      stdout
        .split('\n')
        .filter((line) => /^[A-Z0-9_]+=/.test(line))
        .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
    );
    const need = (name: string) => {
      if (!env[name]) throw new Error(`test/labs/swift.sh ensure printed no ${name}:\n${stdout}`);
      return env[name];
    };
    return {
      proxyUrl: need('SWIFT_PROXY_URL'),
      authUrl: need('SWIFT_AUTH_URL'),
      storageUrl: need('SWIFT_STORAGE_URL'),
      user: need('ST_USER'),
      key: need('ST_KEY'),
      s3Endpoint: need('S3_ENDPOINT'),
      s3Region: need('S3_REGION'),
      accessKeyId: need('AWS_ACCESS_KEY_ID'),
      secretAccessKey: need('AWS_SECRET_ACCESS_KEY'),
    };
  });
  return lab;
}

/** A fresh name per test file, so files running in parallel never share a container or bucket. */
export function uniqueName(label: string): string {
  return `sb-${label}-${randomBytes(4).toString('hex')}`;
}

/** A tempauth token straight from the lab, for checks that bypass the code under test. */
export async function labToken(l: SwiftLab): Promise<string> {
  const res = await fetch(l.authUrl, { headers: { 'X-Auth-User': l.user, 'X-Auth-Key': l.key } });
  const token = res.headers.get('x-auth-token');
  if (!res.ok || !token) throw new Error(`tempauth at ${l.authUrl} answered ${res.status}`);
  return token;
}

/** Raw container listing (names), straight from Swift. */
export async function rawListing(l: SwiftLab, container: string): Promise<string[]> {
  const token = await labToken(l);
  const names: string[] = [];
  let marker = '';
  for (;;) {
    const res = await fetch(`${l.storageUrl}/${container}?format=json&marker=${encodeURIComponent(marker)}`, { headers: { 'X-Auth-Token': token } });
    if (res.status === 404) return names;
    const page = (await res.json()) as Array<{ name: string }>;
    if (page.length === 0) return names;
    names.push(...page.map((o) => o.name));
    marker = page[page.length - 1].name;
  }
}

