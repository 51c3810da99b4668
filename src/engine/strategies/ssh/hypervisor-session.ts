// What the two SSH-transfer session designs (checkpoint-backup.ts, instance-backup.ts) share: the
// hypervisor connection (reopened to the pinned host key when it dropped, so cleanup still
// reaches the host), libvirt on it, the domain, and the order prepare → one point in time
// (atOnePoint) → expose, with close() on any failure.
import { connect as netConnect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { StrategyError } from '../disk-source.ts';
import { atOnePoint, type Consistency } from './consistent-point.ts';
import { HypervisorConnection, type HypervisorCredentials } from './connection.ts';
import { Libvirt } from './libvirt.ts';

export type SessionOptions = { credentials: HypervisorCredentials; libvirtUri?: string };

export abstract class HypervisorSession<O extends SessionOptions> {
  domain = '';
  /** How consistent the point in time is (set by openAlone(); with prepare(), the caller's atOnePoint says). */
  consistency: Consistency | null = null;

  protected constructor(
    readonly options: O,
    public conn: HypervisorConnection,
  ) {}

  get hostKeyFingerprint(): string {
    return this.conn.hostKeyFingerprint;
  }

  /** The live connection; reconnects (to the pinned key) when it dropped, for cleanup. */
  async connection(): Promise<HypervisorConnection> {
    if (!this.conn.alive) {
      this.conn = await HypervisorConnection.connect({ ...this.options.credentials, hostKeyFingerprint: this.conn.hostKeyFingerprint });
    }
    return this.conn;
  }

  async libvirt(): Promise<Libvirt> {
    return new Libvirt(await this.connection(), this.options.libvirtUri);
  }

  /**
   * A TCP connection to a netcat relay just started on the hypervisor (`socat TCP-LISTEN…`),
   * retried while the relay comes up; at `bindAddress` 0.0.0.0 it is reached at the SSH host.
   */
  async relaySocket(relay: { bindAddress: string; port: number }): Promise<Socket> {
    const host = relay.bindAddress === '0.0.0.0' ? this.options.credentials.host : relay.bindAddress;
    for (let i = 0; ; i++) {
      try {
        return await new Promise<Socket>((resolve, reject) => {
          const s = netConnect({ host, port: relay.port }, () => resolve(s));
          s.once('error', reject);
        });
      } catch (e) {
        if (i >= 50) throw new StrategyError('TRANSFER_FAILED', `netcat relay on ${host}:${relay.port} unreachable`, { cause: e });
        await sleep(50);
      }
    }
  }

  /** The point in time, once, inside the caller's atOnePoint window. */
  abstract snapshot(): Promise<void>;
  /** After the window: the frozen disks made readable. */
  abstract expose(): Promise<void>;
  abstract close(): Promise<void>;

  /** A prepared session's file disks alone at their own point in time, then exposed; closed on failure. */
  protected static async openAlone<S extends HypervisorSession<SessionOptions>>(session: S): Promise<S> {
    try {
      session.consistency = await atOnePoint(await session.libvirt(), session.domain, [() => session.snapshot()]);
      await session.expose();
      return session;
    } catch (e) {
      await session.close().catch(() => {});
      throw e;
    }
  }
}
