// What each task type does on a data mover.
import type { Services } from '../services.ts';
import type { Executors } from './task-runner.ts';

export function executors(_services: Services): Executors {
  return {};
}
