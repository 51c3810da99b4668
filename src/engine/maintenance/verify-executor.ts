// The VERIFY executor: checks a destination's repository (structure; with params.readData every
// pack is read, decrypted and re-hashed) and keeps the report's summary on the task. Damage found
// fails the task (with the summary kept), so it shows where attention is needed; a retry would
// find the same damage, so verify tasks are created with one attempt.
import { BackupDestination } from '../../db/entities/index.ts';
import type { SecretBox } from '../../db/secrets.ts';
import { openDestinationRepository } from '../backup/destination-repository.ts';
import type { VerifyReport } from '../repository/index.ts';
import type { TaskContext } from '../task-runner.ts';
import { saveTaskResult } from './task-result.ts';

export type VerifyExecutorDeps = { secrets: SecretBox; workers?: number };

export class VerifyTaskError extends Error {}

/** At most this many problems of each kind are kept on the task (the counts are exact). */
const LISTED = 20;

export type VerifySummary = {
  ok: boolean;
  readData: boolean;
  backups: number;
  packs: number;
  chunks: number;
  checkedBytes: number;
  errorCount: number;
  warningCount: number;
  errors: VerifyReport['errors'];
  warnings: VerifyReport['warnings'];
};

export function verifyExecutor(deps: VerifyExecutorDeps) {
  return async (ctx: TaskContext): Promise<void> => {
    const task = ctx.task;
    if (!task.destination) throw new VerifyTaskError('a verify task needs a destination');
    const readData = task.params?.readData === true;
    const destination = await ctx.em.findOneOrFail(BackupDestination, task.destination.id, { filters: false });

    await ctx.phase('open');
    const repo = await openDestinationRepository(destination, deps.secrets, { workers: deps.workers });
    let report: VerifyReport;
    try {
      await ctx.phase(readData ? 'read-data' : 'structure');
      report = await repo.verify({
        readData,
        onProgress: (p) => ctx.progress({ bytesDone: BigInt(p.bytesDone), bytesTotal: BigInt(p.bytesTotal) }),
      });
    } finally {
      await repo.close();
    }
    const summary: VerifySummary = {
      ok: report.ok, readData, backups: report.backups, packs: report.packs, chunks: report.chunks, checkedBytes: report.checkedBytes,
      errorCount: report.errors.length, warningCount: report.warnings.length,
      errors: report.errors.slice(0, LISTED), warnings: report.warnings.slice(0, LISTED),
    };
    await saveTaskResult(ctx.em, task.id, summary);
    if (!report.ok) {
      throw new VerifyTaskError(`${report.errors.length} problem(s) in ${destination.name}; first: ${report.errors[0]!.message}`);
    }
  };
}
