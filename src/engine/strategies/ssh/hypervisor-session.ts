// What the two SSH-transfer session designs (checkpoint-backup.ts, instance-backup.ts) share: the
// hypervisor connection (reopened to the pinned host key when it dropped, so cleanup still
// reaches the host), libvirt on it, the domain, and the order prepare → one point in time
// (atOnePoint) → expose, with close() on any failure.
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
