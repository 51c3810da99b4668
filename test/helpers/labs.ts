// Real peers for tests: run `bash test/labs/<name>.sh ensure` (idempotent; installs and starts
// what is missing) once per test process, serialized across parallel test files by flock, and
// read the KEY=value lines it prints.
import { execFile, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { registerTestSecrets } from './secret-registry.ts';

const run = promisify(execFile);
const LABS = fileURLToPath(new URL('../labs/', import.meta.url));
export const LAB_ROOT = process.env.STRONGBOX_LAB_DIR ?? '/tmp/strongbox-labs';

export type LabName = 'swift' | 'keystone' | 'sshd' | 'libvirt' | 'ceph';
export const LAB_NAMES: LabName[] = ['swift', 'keystone', 'sshd', 'libvirt', 'ceph'];
const cache = new Map<string, Promise<Record<string, string>>>();

export function parseLabOutput(stdout: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of stdout.split('\n')) {
    const m = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (m) env[m[1]!] = m[2]!;
  }
  return env;
}

/** The value of `key` in a lab's output; a clear error when the lab did not print it. */
export function need(env: Record<string, string>, lab: LabName, key: string): string {
  const value = env[key];
  if (!value) throw new Error(`test/labs/${lab}.sh ensure printed no ${key}`);
  return value;
}

/** Run a lab command under the lab's lock and return its KEY=value output. */
export async function labCommand(name: LabName, command = 'ensure'): Promise<Record<string, string>> {
  mkdirSync(LAB_ROOT, { recursive: true });
  const { stdout } = await run('flock', [`${LAB_ROOT}/.${name}.lock`, 'bash', `${LABS}${name}.sh`, command], {
    timeout: 15 * 60_000,
    maxBuffer: 16 * 1024 * 1024,
  });
  const env = parseLabOutput(stdout);
  registerTestSecrets(...Object.entries(env).filter(([k]) => /PASSWORD|SECRET|TOKEN|_KEY$|KEYRING/.test(k)).map(([, v]) => v));
  return env;
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

/**
 * Hold a lab for this test file alone (test files run in parallel; the libvirt lab has one domain).
 * Resolves once the lock is held; call the returned function to release it.
 */
export async function holdLab(name: LabName): Promise<() => void> {
  mkdirSync(LAB_ROOT, { recursive: true });
  const child = spawn('flock', [`${LAB_ROOT}/.${name}.hold.lock`, 'sh', '-c', 'echo held; exec cat >/dev/null'], { stdio: ['pipe', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`flock on lab ${name} exited ${code}`)));
  });
  return () => child.stdin.end();
}
