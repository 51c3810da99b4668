// Two clouds' worth of data for isolation tests, written straight through the ORM (a system
// fork): tenant projects A ("alpha") and B ("bravo") on cloud 1, C ("charlie") on cloud 2, each
// with instances, volumes, backups (with disks), tasks and a restore; zones, destinations and
// policies visible to all projects ("shared-…") or to chosen ones; quotas per project.
// Every row of B and C carries "bravo"/"charlie" in its name, so a leak is visible in any body.
import { encodeGlobalID } from '@pothos/plugin-relay';
import type { EntityManager } from '@mikro-orm/postgresql';
import * as E from '../../src/db/entities/index.ts';
import type { SecretBox } from '../../src/db/secrets.ts';
import { registerTestSecrets } from './secret-registry.ts';

const registered = (secret: string) => (registerTestSecrets(secret), secret);

export type TenantRows = {
  project: E.Project;
  zone: E.AvailabilityZone;
  destination: E.BackupDestination;
  policy: E.Policy;
  instance: E.Instance;
  volume: E.Volume;
  backup: E.Backup;
  disk: E.BackupDisk;
  task: E.Task;
  restore: E.Restore;
  quota: E.Quota;
};

export type Seed = {
  clouds: E.Cloud[];
  shared: { zone: E.AvailabilityZone; destination: E.BackupDestination; policy: E.Policy };
  alpha: TenantRows;
  bravo: TenantRows;
  charlie: TenantRows;
};

/** Global IDs (Pothos' default: base64 of `Type:uuid`) of a tenant's rows, by GraphQL type name. */
export function globalIds(rows: TenantRows): Record<string, string> {
  return {
    Project: encodeGlobalID('Project', rows.project.id),
    AvailabilityZone: encodeGlobalID('AvailabilityZone', rows.zone.id),
    BackupDestination: encodeGlobalID('BackupDestination', rows.destination.id),
    Policy: encodeGlobalID('Policy', rows.policy.id),
    Instance: encodeGlobalID('Instance', rows.instance.id),
    Volume: encodeGlobalID('Volume', rows.volume.id),
    Backup: encodeGlobalID('Backup', rows.backup.id),
    BackupDisk: encodeGlobalID('BackupDisk', rows.disk.id),
    Task: encodeGlobalID('Task', rows.task.id),
    Restore: encodeGlobalID('Restore', rows.restore.id),
    Quota: encodeGlobalID('Quota', rows.quota.id),
  };
}

/** Database IDs of a tenant's rows. */
export function rowIds(rows: TenantRows): string[] {
  return Object.values(rows).map((r) => (r as { id: string }).id);
}

export async function seedTenants(em: EntityManager, secrets: SecretBox): Promise<Seed> {
  const cloud1 = em.create(E.Cloud, { name: 'cloud-one', keystoneUrl: 'http://keystone-1.test/v3', region: 'RegionOne' });
  const cloud2 = em.create(E.Cloud, { name: 'cloud-two', keystoneUrl: 'http://keystone-2.test/v3', region: 'RegionTwo' });
  em.create(E.CloudAuthDomain, { cloud: cloud1, name: 'Default', username: 'admin', password: secrets.seal('cloud-password-1'), defaultProject: 'admin' });
  const nodeConfig = em.create(E.NodeConfiguration, { name: 'shared-node-config' });
  em.create(E.DataMover, { name: 'shared-mover', host: 'mover-1', nodeConfiguration: nodeConfig });
  em.create(E.Hypervisor, { cloud: cloud1, externalId: 'hv-1', hostname: 'compute-1' });
  em.create(E.StorageProvider, { name: 'shared-ceph', cephUser: 'backup', keyring: secrets.seal('ceph-keyring'), cephConf: secrets.seal('[global]') });

  const shared = {
    zone: em.create(E.AvailabilityZone, { cloud: cloud1, name: 'shared-zone' }),
    destination: em.create(E.BackupDestination, { name: 'shared-destination', kind: 'FILE_SYSTEM', url: 'file:///srv/shared' }),
    policy: undefined as unknown as E.Policy,
  };
  shared.policy = em.create(E.Policy, { name: 'shared-policy', destination: shared.destination });

  const tenant = (name: string, cloud: E.Cloud): TenantRows => {
    const project = em.create(E.Project, { cloud, externalId: `${name}-os-project`, name: `${name}-project` });
    const zone = em.create(E.AvailabilityZone, { cloud, name: `${name}-zone`, visibility: 'CHOSEN_PROJECTS' });
    zone.projects.add(project);
    const destination = em.create(E.BackupDestination, { name: `${name}-destination`, kind: 'S3', url: `s3://${name}-bucket/prefix`, visibility: 'CHOSEN_PROJECTS', credentials: secrets.seal(registered(`${name}-s3-secret`)) });
    destination.projects.add(project);
    const policy = em.create(E.Policy, { name: `${name}-policy`, destination, visibility: 'CHOSEN_PROJECTS' });
    policy.projects.add(project);
    // The shared policy covers every tenant's instance: a visible object with foreign children.
    const instance = em.create(E.Instance, { cloud, project, zone: shared.zone, externalId: `${name}-server`, name: `${name}-instance`, policy: shared.policy });
    const volume = em.create(E.Volume, { cloud, project, instance, externalId: `${name}-volume-os`, name: `${name}-volume`, sizeBytes: 1n << 30n });
    const task = em.create(E.Task, { type: 'BACKUP', project, cloud, instance, policy: shared.policy, destination: shared.destination, state: 'RUNNING' });
    const backup = em.create(E.Backup, { cloud, project, instance, zone: shared.zone, policy: shared.policy, destination: shared.destination, task, state: 'AVAILABLE', frontEndBytes: 1n << 30n, completedAt: new Date() });
    task.backup = backup;
    const disk = em.create(E.BackupDisk, { backup, project, volume, position: 0, name: `${name}-disk`, kind: 'CINDER' });
    const restore = em.create(E.Restore, { backup, project, name: `${name}-restored`, zone });
    const quota = em.create(E.Quota, { name: `${name}-quota`, action: 'BACKUP', scope: 'PROJECT', measure: 'COUNT', windowSeconds: 86400, hardLimit: 10n });
    quota.projects.add(project);
    return { project, zone, destination, policy, instance, volume, backup, disk, task, restore, quota };
  };

  const alpha = tenant('alpha', cloud1);
  const bravo = tenant('bravo', cloud1);
  const charlie = tenant('charlie', cloud2);
  await em.flush();
  return { clouds: [cloud1, cloud2], shared, alpha, bravo, charlie };
}
