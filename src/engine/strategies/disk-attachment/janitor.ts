// Leftovers of crashed or killed backups: temporary volumes (attached to a proxy or not) and
// snapshots tagged `strongbox-task=<taskId>`, older than a grace period, whose task is not
// RUNNING any more. Every backup on a cloud runs this first — two list calls, cheap — so orphans
// never outlive the next backup on that cloud. A kept snapshot ("keep the last snapshot") has
// lost its task tag for `strongbox-kept-for`: it is no orphan and is never touched here.
import type { EntityManager } from '@mikro-orm/postgresql';
import { Task } from '../../../db/entities/index.ts';
import type { ServiceClients } from '../../../openstack/index.ts';
import { ProxyDisks, TASK_TAG } from './proxy-disks.ts';

export type JanitorResult = { volumes: number; snapshots: number; errors: Error[] };

export async function cleanOrphans(
  em: EntityManager,
  os: ServiceClients,
  opts: { proxyServerId: string; olderThanMinutes?: number; now?: Date; wait?: { intervalMs?: number; timeoutMs?: number } },
): Promise<JanitorResult> {
  const cutoff = (opts.now ?? new Date()).getTime() - (opts.olderThanMinutes ?? 30) * 60_000;
  const old = (created: string) => Date.parse(created.endsWith('Z') ? created : `${created}Z`) < cutoff;
  const volumes = (await os.cinder.listVolumes({ allTenants: true })).filter((v) => v.metadata?.[TASK_TAG] && old(v.created_at));
  const snapshots = (await os.cinder.listSnapshots({ allTenants: true })).filter((s) => s.metadata?.[TASK_TAG] && old(s.created_at));
  const taskIds = [...new Set([...volumes, ...snapshots].map((r) => r.metadata[TASK_TAG]!))];
  if (taskIds.length === 0) return { volumes: 0, snapshots: 0, errors: [] };
  const uuid = /^[0-9a-f-]{36}$/i;
  const running = new Set(
    (await em.find(Task, { id: { $in: taskIds.filter((id) => uuid.test(id)) }, state: 'RUNNING' }, { filters: false, fields: ['id'] })).map((t) => t.id),
  );
  const orphanVolumes = volumes.filter((v) => !running.has(v.metadata[TASK_TAG]!));
  const orphanSnapshots = snapshots.filter((s) => !running.has(s.metadata[TASK_TAG]!));
  // Reuse the backup's own cleanup: detach from the proxy if attached, delete, then snapshots.
  const disks = new ProxyDisks(os, 'janitor', { proxyServerId: opts.proxyServerId, attachmentLimit: 1, wait: opts.wait });
  for (const v of orphanVolumes) {
    disks.disks.push({ sourceVolumeId: '', sizeGiB: v.size, volumeId: v.id, attachRequested: v.attachments.length > 0 || v.status !== 'available' });
  }
  for (const s of orphanSnapshots) disks.disks.push({ sourceVolumeId: s.volume_id, sizeGiB: s.size, snapshotId: s.id });
  // Volumes are deleted before snapshots (cleanup walks the list backwards): put snapshots first.
  disks.disks.sort((a, b) => Number(!!a.volumeId) - Number(!!b.volumeId));
  const errors = await disks.cleanup();
  return { volumes: orphanVolumes.length, snapshots: orphanSnapshots.length, errors };
}
