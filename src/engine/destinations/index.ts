// Destination URL → backend. Credentials come from the environment, never from the URL.
//   file:///path
//   s3://bucket/prefix?endpoint=http://…&region=…
//   swift://container/prefix?auth=http://…/v3&region=…
import type { Backend } from './backend.ts';
import { openUntraced } from './open.ts';
import { inSpan } from '../../observability/tracing.ts';

export type { Backend, ObjectInfo } from './backend.ts';
export { BackendError } from './backend.ts';

export async function openBackend(destination: string, env: NodeJS.ProcessEnv = process.env): Promise<Backend> {
  return traced(await openUntraced(destination, env));
}

/** Object reads and writes in spans (no-ops unless tracing is on); the rest is the backend's own. */
function traced(backend: Backend): Backend {
  const span = <T>(op: string, key: string, fn: () => Promise<T>) => inSpan(`destination ${op}`, { 'destination.operation': op, 'destination.object': key }, fn);
  const wrapped: Partial<Backend> = {
    get: (key) => span('get', key, () => backend.get(key)),
    getRange: (key, offset, length, into) => span('get', key, () => backend.getRange(key, offset, length, into)),
    put: (key, data) => span('put', key, () => backend.put(key, data)),
    stat: (key) => span('stat', key, () => backend.stat(key)),
    delete: (key) => span('delete', key, () => backend.delete(key)),
    ...(backend.openWriter ? { openWriter: (key: string) => span('open-writer', key, () => backend.openWriter!(key)) } : {}),
  };
  return new Proxy(backend, {
    get(target, prop) {
      if (prop in wrapped) return wrapped[prop as keyof Backend];
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
