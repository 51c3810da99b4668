// The BACKUP executor: loads the task's instance and destination and hands them to the strategy
// the cloud's `mode` names. Each strategy module owns its data flow; the Backup row, the parent
// choice, the store and the completion are shared (backup-record.ts).
//
// One Backup row per task: a retry reuses the row of the failed attempt (set back to RUNNING).
import type { EntityManager } from '@mikro-orm/postgresql';
import { BackupDestination, Cloud, DataMover, Instance, type Task } from '../../db/entities/index.ts';
import type { UsageRecorder } from '../usage.ts';
import type { SecretBox } from '../../db/secrets.ts';
import type { HttpOptions, WaitOptions } from '../../openstack/index.ts';
import { diskAttachmentBackup } from '../strategies/disk-attachment/backup.ts';
import { sshTransferBackup } from '../strategies/ssh/backup.ts';
import type { TaskContext } from '../task-runner.ts';

export type BackupExecutorDeps = {
  secrets: SecretBox;
  /** The usage ledger, told when a backup becomes available. */
  usage?: UsageRecorder;
  http?: HttpOptions;
  /** Polling of OpenStack resources (tests shorten it). */
  wait?: Omit<WaitOptions, 'signal'>;
  /** Where block devices appear on the proxy (non-nfs drivers). */
  byIdRoot?: string;
  /** The janitor removes tagged leftovers older than this; default 30 minutes. */
  orphanMinutes?: number;
  /** Repository worker threads; default one per core. */
  workers?: number;
  /** SSH transfer: hypervisor folder for qemu-nbd / NBD sockets (default /tmp). */
  hypervisorWorkDir?: string;
  /** The proxy VM when no node configuration names one (STRONGBOX_PROXY_SERVER_ID). */
  defaultProxyServerId?: string;
};

export class BackupTaskError extends Error {}

export type ProxyPlacement = { proxyServerId: string; attachmentLimit: number };

/** Which proxy VM this data mover reads disks in, and how many it may attach there. */
export async function proxyFor(em: EntityManager, dataMoverId: string, cloud: Cloud, defaultProxyServerId?: string): Promise<ProxyPlacement> {
  const mover = await em.findOne(DataMover, dataMoverId, { populate: ['nodeConfiguration'], filters: false });
  const nc = mover?.nodeConfiguration?.proxyServerId ? mover.nodeConfiguration : (await em.populate(cloud, ['nodeConfiguration'])).nodeConfiguration;
  const proxyServerId = nc?.proxyServerId ?? defaultProxyServerId;
  if (!proxyServerId) {
    throw new BackupTaskError(`no proxy VM for cloud ${cloud.name}: set proxyServerId on the data mover's (or the cloud's) node configuration`);
  }
  return { proxyServerId, attachmentLimit: nc?.attachmentLimit ?? 25 };
}

export function backupExecutor(deps: BackupExecutorDeps) {
  return async (ctx: TaskContext): Promise<{ backupId: string }> => {
    const em = ctx.em;
    const task: Task = ctx.task;
    if (!task.instance || !task.destination) throw new BackupTaskError('a backup task needs an instance and a destination');
    const instance = await em.findOneOrFail(Instance, task.instance.id, { populate: ['cloud', 'cloud.authDomains', 'project'], filters: false });
    const destination = await em.findOneOrFail(BackupDestination, task.destination.id, { filters: false });
    if (instance.cloud.mode === 'SSH_TRANSFER') return sshTransferBackup(ctx, deps, instance, destination);
    return diskAttachmentBackup(ctx, deps, instance, destination);
  };
}
