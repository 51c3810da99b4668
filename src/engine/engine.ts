// The engine of one process: a data mover (jobs of its node configuration) and, optionally, a
// scheduler candidate (one leader among all processes). `serve` runs both next to the API;
// `worker` runs a data mover alone.
import type { Services } from '../services.ts';
import { startDataMover, type RunningDataMover } from './data-mover.ts';
import { executors } from './executors.ts';
import { startScheduler, type RunningScheduler } from './scheduler/scheduler.ts';

export type EngineOptions = {
  scheduler?: boolean;
  dataMover?: { nodeConfiguration?: string; concurrency?: number } | false;
};

export type RunningEngine = {
  dataMover?: RunningDataMover;
  scheduler?: RunningScheduler;
  /** Stops scheduling; the data mover's running tasks get `graceMs` to finish (see data-mover.ts). */
  stop(graceMs?: number): Promise<void>;
};

export async function startEngine(services: Services, opts: EngineOptions): Promise<RunningEngine> {
  const base = { orm: services.orm, databaseUrl: services.databaseUrl, publisher: services.pubsub };
  const dataMover = opts.dataMover === false ? undefined : await startDataMover({ ...base, executors: executors(services), ...opts.dataMover });
  const scheduler = opts.scheduler ? await startScheduler(base) : undefined;
  return {
    dataMover,
    scheduler,
    async stop(graceMs?: number) {
      await scheduler?.stop();
      await dataMover?.stop(graceMs);
    },
  };
}
