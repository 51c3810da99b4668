// The engine's `publish(task)` hook (src/engine/task-runner.ts, the scheduler) as events on the
// cross-process pub/sub: a task's first event is CREATED (queued, never run) or STATE; later
// ones are STATE when its state or phase changed, else PROGRESS (the runner throttles those).
// Events are best effort: a failed NOTIFY is logged and never fails the task.
import type { Task } from '../db/entities/index.ts';
import type { EngineHooks } from '../engine/task-runner.ts';
import { Channels, FINAL, taskEvent, type TaskEventKind } from './channels.ts';
import type { PgPubSub } from './pubsub.ts';

export function publishingHooks(pubsub: Pick<PgPubSub, 'publish'>, onError: (e: Error) => void = (e) => process.stderr.write(`task events: ${e.message}\n`)): EngineHooks {
  const seen = new Map<string, { state: string; phase: string | null }>();
  return {
    async publish(task: Task) {
      const before = seen.get(task.id);
      const phase = task.phase ?? null;
      let kind: TaskEventKind;
      if (!before) kind = task.state === 'QUEUED' && task.attempt === 0 ? 'CREATED' : 'STATE';
      else kind = before.state !== task.state || before.phase !== phase ? 'STATE' : 'PROGRESS';
      if (FINAL.has(task.state)) seen.delete(task.id);
      else seen.set(task.id, { state: task.state, phase });
      try {
        await pubsub.publish(Channels.task, taskEvent(task, kind));
      } catch (e) {
        onError(e as Error);
      }
    },
  };
}
