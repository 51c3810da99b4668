// Runs the Ceph CLIs (`rbd`, `ceph`) for one storage provider: its ceph.conf and keyring contents
// are written to a private temp folder (0700, files 0600) for the client's lifetime, then removed.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StrategyError } from '../disk-source.ts';

export interface CephStorageProvider {
  /** Ceph user without the "client." prefix. */
  user: string;
  /** Keyring file contents for that user. */
  keyring: string;
  /** ceph.conf contents (at least `mon host`). */
  config: string;
  poolStrategy: 'INCLUDE' | 'EXCLUDE';
  pools: string[];
}

export interface RbdImage {
  pool: string;
  name: string;
  size: number;
  snapshots: Array<{ id: number; name: string; size: number }>;
}

export class CephClient {
  private constructor(
    readonly provider: CephStorageProvider,
    private dir: string,
  ) {}

  static async open(provider: CephStorageProvider): Promise<CephClient> {
    if (!/^[A-Za-z0-9_.-]+$/.test(provider.user)) throw new StrategyError('INVALID_ARGUMENT', 'invalid Ceph user name');
    const dir = await mkdtemp(join(tmpdir(), 'strongbox-ceph-'));
    const keyring = join(dir, 'keyring');
    await writeFile(keyring, provider.keyring.endsWith('\n') ? provider.keyring : provider.keyring + '\n', { mode: 0o600 });
    // The keyring path goes into the config too, so no tool falls back to /etc/ceph.
    await writeFile(join(dir, 'ceph.conf'), `${provider.config}\n[client.${provider.user}]\nkeyring = ${keyring}\n`, { mode: 0o600 });
    return new CephClient(provider, dir);
  }

  /** Private folder (0700) holding ceph.conf and the keyring; removed by close(). */
  get configDir(): string {
    return this.dir;
  }

  get configFile(): string {
    return join(this.dir, 'ceph.conf');
  }

  private baseArgs(): string[] {
    return ['-c', join(this.dir, 'ceph.conf'), '--id', this.provider.user, '--keyring', join(this.dir, 'keyring')];
  }

  /** Spawn `rbd …` (or `ceph …`) with this provider's identity. */
  spawn(tool: 'rbd' | 'ceph', args: string[]): ChildProcessWithoutNullStreams {
    return spawn(tool, [...this.baseArgs(), ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  }

  async run(tool: 'rbd' | 'ceph', args: string[], errorCode = 'CEPH_COMMAND_FAILED'): Promise<string> {
    const child = this.spawn(tool, args);
    child.stdin.end();
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    const code = await exitCode(child);
    if (code !== 0) throw new StrategyError(errorCode, `${tool} ${args.join(' ')} exited ${code}: ${lastLines(Buffer.concat(err).toString())}`);
    return Buffer.concat(out).toString();
  }

  async json<T>(tool: 'rbd' | 'ceph', args: string[], errorCode?: string): Promise<T> {
    return JSON.parse(await this.run(tool, [...args, '--format', 'json'], errorCode)) as T;
  }

  /** Pools with the rbd application, filtered by the provider's include/exclude strategy. */
  async pools(): Promise<string[]> {
    const pools = await this.json<Array<{ pool_name: string; application_metadata?: Record<string, unknown> }>>('ceph', [
      'osd',
      'pool',
      'ls',
      'detail',
    ]);
    const listed = new Set(this.provider.pools);
    return pools
      .filter((p) => !p.application_metadata || 'rbd' in p.application_metadata)
      .map((p) => p.pool_name)
      .filter((name) => (this.provider.poolStrategy === 'INCLUDE' ? listed.has(name) : !listed.has(name)));
  }

  async images(pool: string): Promise<RbdImage[]> {
    const names = await this.json<string[]>('rbd', ['ls', '-p', pool]);
    const images: RbdImage[] = [];
    for (const name of names) {
      const info = await this.json<{ size: number }>('rbd', ['info', `${pool}/${name}`]);
      images.push({ pool, name, size: info.size, snapshots: await this.snapshots(pool, name) });
    }
    return images;
  }

  async inventory(): Promise<RbdImage[]> {
    const all: RbdImage[] = [];
    for (const pool of await this.pools()) all.push(...(await this.images(pool)));
    return all;
  }

  snapshots(pool: string, image: string): Promise<Array<{ id: number; name: string; size: number }>> {
    return this.json('rbd', ['snap', 'ls', `${pool}/${image}`]);
  }

  async close(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}

export function exitCode(child: ChildProcessWithoutNullStreams): Promise<number> {
  return new Promise((resolve, reject) => {
    if (child.exitCode !== null) return resolve(child.exitCode);
    child.once('error', reject);
    child.once('close', (code, signal) => resolve(code ?? (signal ? 128 : -1)));
  });
}

function lastLines(s: string): string {
  return s.trim().split('\n').slice(-3).join(' | ').slice(0, 500);
}
