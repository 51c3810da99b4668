// The secrets the suite uses, so test/global-setup.ts can check that none reached a log line.
// Fixed ones are listed here; helpers that make secrets at run time register them in the file
// the global setup named (STRONGBOX_TEST_SECRETS_FILE), one JSON string a line.
import { appendFileSync } from 'node:fs';

export const FIXED_TEST_SECRETS = ['sim-admin-password', 'sim-lab2-password', 'cloud-password-1', 'ceph-keyring', 'sim-member-password'];

export function registerTestSecrets(...values: (string | undefined)[]): void {
  const file = process.env.STRONGBOX_TEST_SECRETS_FILE;
  const lines = values.filter((v): v is string => typeof v === 'string' && v.length >= 8).map((v) => `${JSON.stringify(v)}\n`);
  if (file && lines.length > 0) appendFileSync(file, lines.join(''));
}

/** The registered and fixed secrets that appear in `text` (raw or JSON-escaped). */
export function leakedSecrets(text: string, registered: string[]): string[] {
  const all = new Set([...FIXED_TEST_SECRETS, ...registered]);
  return [...all].filter((s) => text.includes(s) || text.includes(JSON.stringify(s).slice(1, -1)));
}
