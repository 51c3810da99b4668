// What a data mover uses to report a task's life: start, phases, byte progress, finish. Progress
// events are throttled (a few per second per task) with a rate over a sliding window and an ETA;
// the Task row is updated at most once a second, and always at phase changes and the end.
// State and phase changes are never throttled.
import type { EntityManager } from '@mikro-orm/postgresql';
import { Task, type TaskState } from '../../db/entities/index.ts';
import { Channels, type TaskEvent, type TaskEventKind } from '../../events/channels.ts';

export type Publisher = { publish(channel: string, event: unknown): Promise<void> };

export type ProgressOptions = {
  /** Least time between two PROGRESS events (default 250 ms: at most 4 a second). */
  minIntervalMs?: number;
  /** Least time between two writes of the Task row's progress (default 1 s). */
  persistIntervalMs?: number;
  /** Window the rate is measured over (default 5 s). */
  rateWindowMs?: number;
  /** Seconds already spent per phase (earlier attempts, time queued). */
  phaseSeconds?: Record<string, number>;
  now?: () => number;
};

type Sample = { at: number; bytes: bigint };

export class ProgressReporter {
  private bytesDone = 0n;
  private bytesTotal = 0n;
  private phase: string | null = null;
  private phaseStartedAt: number;
  private state: TaskState = 'QUEUED';
  private phaseSeconds: Record<string, number> = {};
  private samples: Sample[] = [];
  private lastPublishAt = -Infinity;
  private lastPersistAt = -Infinity;
  private readonly now: () => number;
  private readonly minIntervalMs: number;
  private readonly persistIntervalMs: number;
  private readonly rateWindowMs: number;
  /** Events actually published (tests and logs read it). */
  published = 0;

  /**
   * `em` must see the task (a system fork in a worker); `projectId` is the task's project (events
   * are filtered on it before anything is read).
   */
  constructor(
    private readonly em: EntityManager,
    private readonly publisher: Publisher,
    private readonly taskId: string,
    private readonly projectId: string | null,
    options: ProgressOptions = {},
  ) {
    this.now = options.now ?? (() => performance.now());
    this.minIntervalMs = options.minIntervalMs ?? 250;
    this.persistIntervalMs = options.persistIntervalMs ?? 1000;
    this.rateWindowMs = options.rateWindowMs ?? 5000;
    this.phaseSeconds = { ...options.phaseSeconds };
    this.phaseStartedAt = this.now();
  }

  /** Bytes per second over the sliding window, null until two samples exist. */
  rate(): number | null {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || !last || last.at <= first.at) return null;
    return (Number(last.bytes - first.bytes) / (last.at - first.at)) * 1000;
  }

  eta(): number | null {
    const rate = this.rate();
    if (!rate || rate <= 0 || this.bytesTotal <= this.bytesDone) return null;
    return Number(this.bytesTotal - this.bytesDone) / rate;
  }

  /** The task is RUNNING (on this data mover), in `phase`. */
  async start(phase: string, bytesTotal?: bigint): Promise<void> {
    this.state = 'RUNNING';
    if (bytesTotal !== undefined) this.bytesTotal = bytesTotal;
    this.enterPhase(phase);
    await this.persist({ state: 'RUNNING', startedAt: new Date() });
    await this.publish('STATE');
  }

  /** This attempt failed and the task goes back to the queue for another. */
  async requeue(error: string): Promise<void> {
    this.closePhase();
    this.phase = null;
    this.state = 'QUEUED';
    await this.persist({ state: 'QUEUED', error });
    await this.publish('STATE');
  }

  async setPhase(phase: string, bytesTotal?: bigint): Promise<void> {
    if (bytesTotal !== undefined) this.bytesTotal = bytesTotal;
    this.enterPhase(phase);
    await this.persist({});
    await this.publish('STATE');
  }

  /** Bytes done so far (and the total, when it changed); throttled. */
  async progress(bytesDone: bigint, bytesTotal?: bigint): Promise<void> {
    this.bytesDone = bytesDone;
    if (bytesTotal !== undefined) this.bytesTotal = bytesTotal;
    const at = this.now();
    this.samples.push({ at, bytes: bytesDone });
    while (this.samples.length > 2 && this.samples[0]!.at < at - this.rateWindowMs) this.samples.shift();
    if (at - this.lastPublishAt < this.minIntervalMs) return;
    if (at - this.lastPersistAt >= this.persistIntervalMs) await this.persist({});
    await this.publish('PROGRESS');
  }

  /**
   * The end: SUCCEEDED, FAILED (with an error) or CANCELLED. `complete`: the work is all done
   * (zero ranges and unchanged data count as done), so bytesDone becomes bytesTotal.
   */
  async finish(state: Extract<TaskState, 'SUCCEEDED' | 'FAILED' | 'CANCELLED'>, error?: string, { complete = false } = {}): Promise<void> {
    this.closePhase();
    this.state = state;
    if (complete && state === 'SUCCEEDED' && this.bytesDone < this.bytesTotal) this.bytesDone = this.bytesTotal;
    await this.persist({ state, finishedAt: new Date(), error });
    await this.publish('STATE');
  }

  private enterPhase(phase: string) {
    this.closePhase();
    this.phase = phase;
    this.phaseStartedAt = this.now();
    this.samples = [];
  }

  private closePhase() {
    if (this.phase === null) return;
    const seconds = (this.now() - this.phaseStartedAt) / 1000;
    this.phaseSeconds[this.phase] = (this.phaseSeconds[this.phase] ?? 0) + seconds;
  }

  private async persist(extra: Partial<Pick<Task, 'state' | 'startedAt' | 'finishedAt' | 'error'>>) {
    this.lastPersistAt = this.now();
    await this.em.nativeUpdate(
      Task,
      { id: this.taskId },
      {
        ...extra,
        phase: this.phase,
        bytesDone: this.bytesDone,
        bytesTotal: this.bytesTotal,
        rate: this.rate() ?? undefined,
        phaseSeconds: { ...this.phaseSeconds },
      },
    );
  }

  private async publish(kind: TaskEventKind) {
    this.lastPublishAt = this.now();
    const event: TaskEvent = {
      kind,
      taskId: this.taskId,
      projectId: this.projectId,
      state: this.state,
      phase: this.phase,
      bytesDone: this.bytesDone.toString(),
      bytesTotal: this.bytesTotal.toString(),
      rate: this.rate(),
      eta: this.eta(),
      at: new Date().toISOString(),
    };
    await this.publisher.publish(Channels.task, event);
    this.published++;
  }
}
