// The real Swift all-in-one for destination tests: `bash test/labs/swift.sh ensure` installs
// and starts it when needed (idempotent; the script serialises parallel callers with flock),
// and prints KEY=value lines that we parse. Called once per test process.
import { randomBytes } from 'node:crypto';
import { lab as ensureLab, need } from './labs.ts';

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

export async function ensureSwiftLab(): Promise<SwiftLab> {
  const env = await ensureLab('swift');
  const get = (name: string) => need(env, 'swift', name);
  return {
    proxyUrl: get('SWIFT_PROXY_URL'),
    authUrl: get('SWIFT_AUTH_URL'),
    storageUrl: get('SWIFT_STORAGE_URL'),
    user: get('ST_USER'),
    key: get('ST_KEY'),
    s3Endpoint: get('S3_ENDPOINT'),
    s3Region: get('S3_REGION'),
    accessKeyId: get('AWS_ACCESS_KEY_ID'),
    secretAccessKey: get('AWS_SECRET_ACCESS_KEY'),
  };
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

