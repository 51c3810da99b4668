// SSH connection to a hypervisor: per-hypervisor credentials, host key pinned on first contact,
// optional command prefix for OpenStack in containers (e.g. "docker exec nova_libvirt").
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Duplex } from 'node:stream';
import { Client, type ClientChannel } from 'ssh2';
import { StrategyError } from '../disk-source.ts';

export interface HypervisorCredentials {
  host: string;
  port?: number;
  username: string;
  password?: string;
  privateKeyPath?: string;
  passphrase?: string;
  /**
   * Pinned host key ("SHA256:…", as `ssh-keygen -l` prints it). Null/absent = first contact: any
   * key is accepted and reported in `hostKeyFingerprint` for the caller to pin.
   */
  hostKeyFingerprint?: string | null;
  /** Prepended to hypervisor-side commands (virsh, qemu-img, qemu-nbd), e.g. `docker exec nova_libvirt`. */
  commandPrefix?: string;
  readyTimeoutMs?: number;
}

export interface ExecResult {
  code: number;
  stdout: Buffer;
  stderr: string;
}

/** Shell-quote one argument for a POSIX shell. */
export function shq(s: string): string {
  return /^[A-Za-z0-9_\/.,:=@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export function fingerprint(key: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(key).digest('base64').replace(/=+$/, '');
}

export class HypervisorConnection {
  private ended = false;
  private constructor(
    readonly credentials: HypervisorCredentials,
    private client: Client,
    /** The host key seen on this connection: persist it on first contact. */
    readonly hostKeyFingerprint: string,
  ) {
    // Settles when the TCP connection goes: reads racing it fail instead of waiting on a channel
    // that will never close.
    this.lost = new Promise<never>((_, reject) => {
      const gone = () => {
        this.ended = true;
        reject(new StrategyError('CONNECTION_LOST', `connection to ${credentials.host} lost`));
      };
      client.on('close', gone);
      client.on('end', gone);
    });
    this.lost.catch(() => {});
  }

  readonly lost: Promise<never>;

  get alive(): boolean {
    return !this.ended;
  }

  static async connect(credentials: HypervisorCredentials): Promise<HypervisorConnection> {
    const client = new Client();
    let seen = '';
    let mismatch = false;
    const privateKey = credentials.privateKeyPath ? await readFile(credentials.privateKeyPath) : undefined;
    const where = `${credentials.host}:${credentials.port ?? 22}`;
    await new Promise<void>((resolve, reject) => {
      client.once('ready', () => resolve());
      client.once('error', (err) => {
        if (mismatch) {
          reject(
            new StrategyError(
              'HOST_KEY_MISMATCH',
              `host key of ${where} changed: pinned ${credentials.hostKeyFingerprint}, offered ${seen}; refusing to connect`,
            ),
          );
        } else {
          const level = (err as { level?: string }).level;
          reject(
            new StrategyError(
              level === 'client-authentication' ? 'AUTH_FAILED' : 'CONNECT_FAILED',
              `${where}: ${err.message}`,
              { cause: err },
            ),
          );
        }
      });
      client.connect({
        host: credentials.host,
        port: credentials.port ?? 22,
        username: credentials.username,
        password: credentials.password,
        privateKey,
        passphrase: credentials.passphrase,
        readyTimeout: credentials.readyTimeoutMs ?? 20_000,
        keepaliveInterval: 5_000,
        keepaliveCountMax: 3,
        hostVerifier: (key: Buffer) => {
          seen = fingerprint(key);
          const pinned = credentials.hostKeyFingerprint;
          mismatch = !!pinned && pinned !== seen;
          return !mismatch;
        },
      });
    });
    return new HypervisorConnection(credentials, client, seen);
  }

  /** A raw exec channel (for streaming). `prefixed` runs it through the command prefix. */
  channel(command: string, prefixed = true): Promise<ClientChannel> {
    const cmd = prefixed && this.credentials.commandPrefix ? `${this.credentials.commandPrefix} ${command}` : command;
    return new Promise((resolve, reject) => {
      this.client.exec(cmd, (err, ch) => {
        if (err) reject(new StrategyError('TRANSFER_FAILED', `exec failed: ${err.message}`, { cause: err }));
        else resolve(ch);
      });
    });
  }

  /** Run a command to completion, collecting output. */
  async exec(args: string[] | string, opts: { prefixed?: boolean } = {}): Promise<ExecResult> {
    const command = typeof args === 'string' ? args : args.map(shq).join(' ');
    const ch = await this.channel(command, opts.prefixed ?? true);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const done = new Promise<ExecResult>((resolve, reject) => {
      let code: number | null = null;
      ch.on('data', (d: Buffer) => out.push(d));
      ch.stderr.on('data', (d: Buffer) => err.push(d));
      ch.on('exit', (c: number | null) => (code = c));
      ch.on('error', reject);
      ch.on('close', () => {
        if (code === null && this.ended) {
          reject(new StrategyError('CONNECTION_LOST', `connection to ${this.credentials.host} lost during: ${command}`));
          return;
        }
        resolve({ code: code ?? -1, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString() });
      });
    });
    return Promise.race([done, this.lost]);
  }

  /** Run a command; non-zero exit → StrategyError(code) with the command's stderr as reason. */
  async run(args: string[] | string, errorCode = 'COMMAND_FAILED', opts: { prefixed?: boolean } = {}): Promise<string> {
    return outputOf(args, await this.exec(args, opts), errorCode);
  }

  /**
   * A read-only command, asked up to three times: under heavy load an exec channel has been seen to
   * close without an exit status although the command ran (code -1), and a query is safe to ask again.
   */
  async ask(args: string[]): Promise<ExecResult> {
    for (let attempt = 1; ; attempt++) {
      const r = await this.exec(args);
      if (r.code !== -1 || attempt === 3) return r;
    }
  }

  /** ask; a non-zero exit → StrategyError(code) with the command's stderr as reason. */
  async query(args: string[], errorCode: string): Promise<string> {
    return outputOf(args, await this.ask(args), errorCode);
  }

  /**
   * Starts `command` in the background on the hypervisor, its pid in `pidFile`, unless that pid
   * still runs: so it is safe to ask again when a channel closes without an exit status (seen
   * under load), and is asked up to three times.
   */
  async startBackground(command: string, pidFile: string, errorCode: string): Promise<void> {
    const script = `[ -s ${shq(pidFile)} ] && kill -0 "$(cat ${shq(pidFile)})" 2>/dev/null || { ${command} </dev/null >/dev/null 2>&1 & echo $! > ${shq(pidFile)}; }`;
    for (let attempt = 1; ; attempt++) {
      const r = await this.exec(`sh -c ${shq(script)}`, { prefixed: false });
      if (r.code === 0) return;
      if (r.code !== -1 || attempt >= 3) throw new StrategyError(errorCode, `${command.slice(0, 200)} exited ${r.code}: ${r.stderr.trim().slice(0, 500)}`);
    }
  }

  /** A stream to a unix socket on the hypervisor (OpenSSH streamlocal forwarding). */
  forwardUnix(path: string): Promise<Duplex> {
    return new Promise((resolve, reject) => {
      this.client.openssh_forwardOutStreamLocal(path, (err, ch) => {
        if (err) reject(new StrategyError('TRANSFER_FAILED', `cannot reach ${path}: ${err.message}`, { cause: err }));
        else resolve(ch);
      });
    });
  }

  /** For fault tests: drop the TCP connection without a goodbye. */
  destroy(): void {
    this.client.destroy();
  }

  close(): void {
    this.ended = true;
    this.client.end();
  }
}

function outputOf(args: string[] | string, r: ExecResult, errorCode: string): string {
  if (r.code !== 0) {
    const what = typeof args === 'string' ? args : args.join(' ');
    throw new StrategyError(errorCode, `${what.slice(0, 200)} exited ${r.code}: ${r.stderr.trim().slice(0, 500)}`);
  }
  return r.stdout.toString();
}
