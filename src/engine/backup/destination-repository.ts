// A BackupDestination row → its open repository.
//
// Key: the repository's key file is opened with a key DERIVED from the service's master key
// (HKDF, purpose "repository-key"), not stored anywhere: whoever holds the master key can open
// every destination this service wrote, and a destination read alone (a stolen bucket) is
// useless. Rotating the master key therefore needs a new key file in each repository (the
// format allows several key files; a `repo key add` step is a TODO, not done here).
//
// Credentials: the destination's sealed credentials are a JSON object of the environment
// variables the backend reads (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY for S3, OS_USERNAME/
// OS_PASSWORD/… or ST_* for Swift); they are opened in memory and given to the backend only.
import type { BackupDestination } from '../../db/entities/index.ts';
import type { SecretBox } from '../../db/secrets.ts';
import { BackendError, openBackend, type Backend } from '../destinations/index.ts';
import type { ObjectWriter } from '../destinations/backend.ts';
import { Repository, RepositoryError } from '../repository/index.ts';
import { destinationErrors } from '../../observability/metrics.ts';

export const REPOSITORY_KEY_PURPOSE = 'repository-key';

export async function openDestinationRepository(
  destination: BackupDestination,
  secrets: SecretBox,
  opts: { createIfMissing?: boolean; workers?: number } = {},
): Promise<Repository> {
  const credentials = destination.credentials ? (JSON.parse(secrets.open(destination.credentials)) as Record<string, string>) : {};
  const backend = countingErrors(await openBackend(destination.url, { ...process.env, ...credentials }), destination.name);
  const masterKey = secrets.deriveKey(REPOSITORY_KEY_PURPOSE);
  try {
    return await Repository.open(backend, masterKey, { workers: opts.workers });
  } catch (e) {
    if (!(opts.createIfMissing && e instanceof RepositoryError && e.code === 'NOT_A_REPOSITORY')) throw e;
    // Two first backups racing: init refuses a non-empty destination; the loser opens.
    try {
      return await Repository.init(backend, { masterKey, chunkSize: destination.chunkSizeBytes }, { workers: opts.workers });
    } catch (e2) {
      if (e2 instanceof RepositoryError && e2.code === 'ALREADY_EXISTS') return Repository.open(backend, masterKey, { workers: opts.workers });
      throw e2;
    }
  }
}

/**
 * The backend with every failed call counted under the destination's name and the error's kind
 * (a Proxy: `instanceof` checks on the backend's class still hold).
 */
function countingErrors(backend: Backend, destination: string): Backend {
  const count = <T>(p: Promise<T>): Promise<T> => p.catch((e: unknown) => {
    destinationErrors.inc({ destination, kind: e instanceof BackendError ? e.code.toLowerCase() : 'other' });
    throw e;
  });
  const calls = <T extends object>(target: T): T => new Proxy(target, {
    get(t, prop) {
      const value = Reflect.get(t, prop, t) as unknown;
      if (typeof value !== 'function') return value;
      if (prop === 'list') {
        return async function* (prefix: string) {
          try {
            yield* (value as Backend['list']).call(t, prefix);
          } catch (e) {
            await count(Promise.reject(e));
          }
        };
      }
      if (prop === 'openWriter') return async (key: string) => calls(await count((value as NonNullable<Backend['openWriter']>).call(t, key)) as ObjectWriter);
      return (...args: unknown[]) => {
        const result = (value as (...a: unknown[]) => unknown).apply(t, args);
        return result instanceof Promise ? count(result) : result;
      };
    },
  });
  return calls(backend);
}
