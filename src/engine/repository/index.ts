// Public surface of the repository engine for the task engine and strategies. See repository.ts
// for a usage sketch and docs/repository-format.md for the on-storage format.
export { Repository, type InitOptions, type OpenOptions } from './repository.ts';
export type { BackupOptions, BackupProgress, BackupResult, DiskInput } from './backup.ts';
export type { DiskChunks, RestoreOptions, RestoreResult, RestoreTarget } from './restore.ts';
export type { VerifyOptions, VerifyProblem, VerifyReport } from './verify.ts';
export type { PruneOptions, PruneResult } from './prune.ts';
export type { BackupRecord, DiskRecord } from './backup-record.ts';
export { FileDiskSource, type DiskSource, type Extent } from './disk-source.ts';
export { RepositoryError, type RepositoryErrorCode } from './errors.ts';
export { parseMasterKey } from './keys.ts';
