// Typed errors of the repository layer. Every message lives here, in a named factory, so callers
// (CLI, task engine) can switch on `code` and users read one clear sentence naming what is wrong.
// No message ever carries key material.

export type RepositoryErrorCode =
  | 'NOT_A_REPOSITORY'
  | 'ALREADY_EXISTS'
  | 'UNSUPPORTED_VERSION'
  | 'WRONG_KEY'
  | 'BAD_MASTER_KEY'
  | 'DAMAGED'
  | 'TRUNCATED'
  | 'MISSING_OBJECT'
  | 'BACKUP_NOT_FOUND'
  | 'DISK_NOT_FOUND'
  | 'SOURCE_NOT_FOUND'
  | 'TARGET_EXISTS'
  | 'LOCKED'
  | 'LOCK_LOST'
  | 'ABORTED'
  | 'INVALID_ARGUMENT';

export class RepositoryError extends Error {
  constructor(
    readonly code: RepositoryErrorCode,
    message: string,
    /** The stored object concerned, when there is one (e.g. "index/ab12…"). */
    readonly object?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'RepositoryError';
  }

  static notARepository(location: string) {
    return new RepositoryError('NOT_A_REPOSITORY', `${location} is not a Strongbox repository (no config object); run "repo init" first`, 'config');
  }
  static alreadyExists(location: string) {
    return new RepositoryError('ALREADY_EXISTS', `${location} already holds a repository (or other objects); refusing to overwrite it`, 'config');
  }
  static foreign(location: string, why: string) {
    return new RepositoryError('NOT_A_REPOSITORY', `${location}: the config object is not a Strongbox repository config (${why})`, 'config');
  }
  static unsupportedVersion(location: string, version: unknown) {
    return new RepositoryError('UNSUPPORTED_VERSION', `${location}: repository format version ${String(version)} is not supported by this Strongbox`, 'config');
  }
  static badMasterKey(why: string) {
    return new RepositoryError('BAD_MASTER_KEY', `STRONGBOX_MASTER_KEY is not usable: ${why} (expected 32 bytes, base64 or hex)`);
  }
  static wrongKey(location: string) {
    return new RepositoryError('WRONG_KEY', `${location}: the master key does not open this repository (wrong STRONGBOX_MASTER_KEY)`);
  }
  static damaged(location: string, object: string, why: string, cause?: unknown) {
    return new RepositoryError('DAMAGED', `${location}: ${object} is damaged (${why})`, object, { cause });
  }
  static truncated(location: string, object: string, expected: number, actual: number) {
    return new RepositoryError('TRUNCATED', `${location}: ${object} is truncated (${actual} bytes, expected ${expected})`, object);
  }
  static missingObject(location: string, object: string, why: string) {
    return new RepositoryError('MISSING_OBJECT', `${location}: ${object} is missing (${why})`, object);
  }
  static backupNotFound(location: string, id: string) {
    return new RepositoryError('BACKUP_NOT_FOUND', `${location}: no backup ${JSON.stringify(id)}`, `backups/${id}`);
  }
  static diskNotFound(backupId: string, disk: string | number, count: number) {
    return new RepositoryError('DISK_NOT_FOUND', `backup ${backupId} has no disk ${JSON.stringify(disk)} (it has ${count} disk${count === 1 ? '' : 's'}, numbered from 0)`);
  }
  static sourceNotFound(path: string, cause?: unknown) {
    return new RepositoryError('SOURCE_NOT_FOUND', `disk ${path} cannot be read: ${(cause as Error)?.message ?? 'not found'}`, undefined, { cause });
  }
  static targetExists(path: string) {
    return new RepositoryError('TARGET_EXISTS', `restore target ${path} already exists and is not a block device; refusing to overwrite it`);
  }
  static locked(location: string, holder: string) {
    return new RepositoryError('LOCKED', `${location} is locked by ${holder}; try again later`);
  }
  static lockLost(location: string, operation: string, sinceMs: number) {
    return new RepositoryError(
      'LOCK_LOST',
      `${location}: ${operation} stopped: its lock could not be refreshed for ${Math.round(sinceMs / 1000)}s (destination unreachable?), and another host could soon take it as stale`,
      'locks/',
    );
  }
  static aborted() {
    return new RepositoryError('ABORTED', 'the operation was aborted');
  }
  static invalid(message: string) {
    return new RepositoryError('INVALID_ARGUMENT', message);
  }
}
