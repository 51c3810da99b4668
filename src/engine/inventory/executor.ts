// The INVENTORY_SYNC executor for the task runner: sync steps become task phases, steps done
// become progress (bytesDone/bytesTotal count steps here), cancellation aborts the sync.
// Typed structurally so it plugs into the runner's `Executors` without importing it.
import type { SyncDeps } from './sync.ts';
import { syncInventory } from './sync.ts';

export type InventoryTaskContext = {
  task: { cloud?: { id: string } | null };
  signal: AbortSignal;
  phase(name: string): Promise<void>;
  progress(p: { bytesDone: bigint; bytesTotal: bigint }): void;
};

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
