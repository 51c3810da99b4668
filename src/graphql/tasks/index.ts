// The task area: tasks, backups, restores, trigger mutations and live subscriptions.
import './types.ts';
import './queries.ts';
import './start-backup.ts';
import './start-restore.ts';
import './cancel-task.ts';
import './inventory-sync.ts';
import './maintenance.ts';
import './subscriptions.ts';
