// One point in time across every disk of an instance. Each "source" is one snapshot operation: the
// libvirt checkpoint or disk-only snapshot of all the domain's file disks (atomic across them by
// itself), and one `rbd snap create` per RBD image. Taken one after another they would be moments
// apart, so the guest is held still for the step that takes them all:
// - a guest agent answers: its filesystems are frozen (`domfsfreeze`), then thawed — quiesced;
// - else, with more than one source: the domain is paused (`virsh suspend`), then resumed —
//   crash-consistent across disks (as after a power cut); one source needs no pause.
// The thaw or resume always runs, also when a snapshot fails; a domain that was not running (paused
// by someone else, shut off) is left as it was.
import { performance } from 'node:perf_hooks';
import { StrategyError } from '../disk-source.ts';
import type { Libvirt } from './libvirt.ts';

/** How consistent a backup's point in time is; recorded in the backup's metadata. */
export type Consistency = {
  /** QUIESCED: the guest flushed and froze its filesystems; CRASH_CONSISTENT: the disks as at one instant. */
  level: 'QUIESCED' | 'CRASH_CONSISTENT';
  /** What held the disks still: guest filesystems frozen, domain paused by us, domain not running, nothing needed. */
  hold: 'FSFREEZE' | 'PAUSE' | 'NOT_RUNNING' | 'NONE';
  /** How long the guest was frozen or paused (ms), with the hold's own commands. */
  heldMs: number | null;
  /** Snapshot operations taken at this point. */
  sources: number;
};

/** One snapshot operation, run inside the window (they run concurrently: the guest is held anyway). */
export type SnapshotStep = () => Promise<unknown>;

export async function atOnePoint(lv: Libvirt, domain: string, steps: SnapshotStep[]): Promise<Consistency> {
  const sources = steps.length;
  if (await lv.guestAgentAnswers(domain)) {
    const heldMs = await held(() => lv.freezeFilesystems(domain), () => lv.thawFilesystems(domain), steps);
    return { level: 'QUIESCED', hold: 'FSFREEZE', heldMs, sources };
  }
  if (sources < 2) {
    await all(steps);
    return { level: 'CRASH_CONSISTENT', hold: 'NONE', heldMs: null, sources };
  }
  if ((await lv.domainState(domain)) !== 'running') {
    await all(steps);
    return { level: 'CRASH_CONSISTENT', hold: 'NOT_RUNNING', heldMs: null, sources };
  }
  const heldMs = await held(() => lv.pause(domain), () => lv.resume(domain), steps);
  return { level: 'CRASH_CONSISTENT', hold: 'PAUSE', heldMs, sources };
}

/** hold → every step → release (always, also after a failed hold or step); the milliseconds held. */
async function held(hold: () => Promise<void>, release: () => Promise<void>, steps: SnapshotStep[]): Promise<number> {
  const start = performance.now();
  let failure: unknown = null;
  try {
    await hold();
    await all(steps);
  } catch (e) {
    failure = e;
  }
  try {
    await release();
  } catch (e) {
    // A guest left frozen or paused matters more than the snapshot failure: both are named.
    const why = failure instanceof Error ? `; the snapshot step had failed too: ${failure.message}` : '';
    const code = e instanceof StrategyError ? e.code : 'RELEASE_FAILED';
    throw new StrategyError(code, `${e instanceof StrategyError ? e.reason : (e as Error).message}${why}`, { cause: e });
  }
  if (failure !== null) throw failure;
  return Math.round(performance.now() - start);
}

/** Every step, concurrently; each is awaited before the first failure is thrown. */
async function all(steps: SnapshotStep[]): Promise<void> {
  const results = await Promise.allSettled(steps.map((s) => s()));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}
