// What each task type does on a data mover.
import type { Services } from '../services.ts';
import { backupExecutor } from './backup/backup-executor.ts';
import { restoreExecutor } from './backup/restore-executor.ts';
import { inventorySyncExecutor } from './inventory/executor.ts';
import { pruneExecutor } from './maintenance/prune-executor.ts';
import { verifyExecutor } from './maintenance/verify-executor.ts';
import type { Executors } from './task-runner.ts';

export function executors(services: Services): Executors {
  return {
    INVENTORY_SYNC: inventorySyncExecutor(services),
    BACKUP: backupExecutor({ secrets: services.secrets, usage: services.usage, defaultProxyServerId: services.config.proxyServerId }),
    RESTORE: restoreExecutor({ secrets: services.secrets, defaultProxyServerId: services.config.proxyServerId }),
    PRUNE: pruneExecutor({ secrets: services.secrets, usage: services.usage }),
    VERIFY: verifyExecutor({ secrets: services.secrets }),
  };
}
