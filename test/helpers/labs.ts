// Real peers for strategy tests: run `bash test/labs/<name>.sh ensure` (idempotent; installs and
// starts what is missing) once per test process, serialized across parallel test files by flock.
import { execFile } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const LABS = fileURLToPath(new URL('../labs/', import.meta.url));
export const LAB_ROOT = process.env.STRONGBOX_LAB_DIR ?? '/tmp/strongbox-labs';

export type LabName = 'sshd' | 'libvirt' | 'ceph';
const cache = new Map<string, Promise<Record<string, string>>>();

export function parseLabOutput(stdout: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of stdout.split('\n')) {
    const m = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (m) env[m[1]] = m[2];
  }
  return env;
}

/** Run a lab command under the lab's lock and return its KEY=value output. */
export async function labCommand(name: LabName, command = 'ensure'): Promise<Record<string, string>> {
  mkdirSync(LAB_ROOT, { recursive: true });
  const { stdout } = await run('flock', [`${LAB_ROOT}/.${name}.lock`, 'bash', `${LABS}${name}.sh`, command], {
    timeout: 15 * 60_000,
    maxBuffer: 16 * 1024 * 1024,
  });
  return parseLabOutput(stdout);
}

/** `ensure` once per test process. */
export function lab(name: LabName): Promise<Record<string, string>> {
  let p = cache.get(name);
  if (!p) {
    p = labCommand(name, 'ensure');
    cache.set(name, p);
    p.catch(() => cache.delete(name));
  }
  return p;
}
