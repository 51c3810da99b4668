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
import { openBackend } from '../destinations/index.ts';
import { Repository, RepositoryError } from '../repository/index.ts';

export const REPOSITORY_KEY_PURPOSE = 'repository-key';

export async function openDestinationRepository(
  destination: BackupDestination,
  secrets: SecretBox,
  opts: { createIfMissing?: boolean; workers?: number } = {},
): Promise<Repository> {
  const credentials = destination.credentials ? (JSON.parse(secrets.open(destination.credentials)) as Record<string, string>) : {};
  const backend = await openBackend(destination.url, { ...process.env, ...credentials });
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
