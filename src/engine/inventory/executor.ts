// The INVENTORY_SYNC executor for the task runner: sync steps become task phases, steps done
// become progress (bytesDone/bytesTotal count steps here), cancellation aborts the sync.
import type { TaskContext } from '../task-runner.ts';
import type { SyncDeps } from './sync.ts';
import { syncInventory } from './sync.ts';

/** What the executor uses of the runner's TaskContext. */
export type InventoryTaskContext = Pick<TaskContext, 'signal' | 'phase' | 'progress'> & { task: { cloud?: { id: string } | null } };

export function inventorySyncExecutor(deps: SyncDeps) {
  return async (ctx: InventoryTaskContext): Promise<void> => {
    const cloudId = ctx.task.cloud?.id;
    if (!cloudId) throw new Error('an inventory sync task needs a cloud');
    let phase = '';
    await syncInventory(deps, cloudId, {
      signal: ctx.signal,
      onProgress: async (p) => {
        if (p.step !== phase) await ctx.phase((phase = p.step));
        ctx.progress({ bytesDone: BigInt(p.done), bytesTotal: BigInt(p.total) });
      },
    });
  };
}
