// Polling until an OpenStack resource reaches a wanted status: with a deadline, an abort signal,
// and error states that end the wait at once.
import { setTimeout as sleep } from 'node:timers/promises';
import { OpenStackWaitError } from './errors.ts';

export type WaitOptions = {
  timeoutMs?: number;
  intervalMs?: number;
  signal?: AbortSignal;
};

export async function waitForStatus<T>(
  what: string,
  poll: () => Promise<T>,
  statusOf: (value: T) => string,
  wanted: readonly string[],
  opts: WaitOptions & { errorStates?: readonly string[] } = {},
): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 300_000);
  const errorStates = opts.errorStates ?? ['error', 'error_deleting', 'error_restoring', 'ERROR'];
  let interval = opts.intervalMs ?? 1000;
  let last: string | undefined;
  for (;;) {
    opts.signal?.throwIfAborted();
    const value = await poll();
    last = statusOf(value);
    if (wanted.includes(last)) return value;
    if (errorStates.includes(last)) throw new OpenStackWaitError(what, last, 'error-state');
    const left = deadline - Date.now();
    if (left <= 0) throw new OpenStackWaitError(what, last, 'timeout');
    await sleep(Math.min(interval, left), undefined, { signal: opts.signal }).catch((err) => {
      throw opts.signal?.aborted ? opts.signal.reason : err; // the caller's reason, not a generic AbortError
    });
    interval = Math.min(interval * 1.5, 5000);
  }
}

/** Polls until `gone()` says the resource no longer exists. */
export async function waitForGone(what: string, gone: () => Promise<boolean>, opts: WaitOptions = {}): Promise<void> {
  await waitForStatus(what, async () => ((await gone()) ? 'gone' : 'present'), (s) => s, ['gone'], { ...opts, errorStates: [] });
}
