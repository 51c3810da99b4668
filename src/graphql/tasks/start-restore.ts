// startRestore: a restore task (and its Restore row) for an available backup, into a project
// the caller may use (a TENANT: one of its own), optionally a zone visible to that project,
// with mappings of networks, images, volume types, flavor, key pair and security groups — or
// one disk only (diskPosition) to a new volume.
import { can } from '../../auth/policy.ts';
import type { EntityManager } from '@mikro-orm/postgresql';
import { AvailabilityZone, Backup, BackupDisk, Instance, Project, type RestoreMappings } from '../../db/entities/index.ts';
import { createTask } from '../../engine/tasks/tasks.ts';
import { builder } from '../builder.ts';
import type { Context } from '../context.ts';
import { scopeWhere } from './loaders.ts';
import { actorOf, idOf, notFound, refuse, runTaskMutation, taskWriters, TaskPayloadRef } from './payload.ts';
import { visibleTo } from './start-backup.ts';

const MAX_NAME = 255;
const MAX_LIST = 100;

const IdMappingInput = builder.inputType('IdMappingInput', {
  description: 'Use `to` (an OpenStack ID in the target cloud) where the backup had `from`',
  fields: (t) => ({ from: t.string({ required: true }), to: t.string({ required: true }) }),
});

const RestoreMappingsInput = builder.inputType('RestoreMappingsInput', {
  fields: (t) => ({
    networks: t.field({ type: [IdMappingInput] }),
    images: t.field({ type: [IdMappingInput] }),
    volumeTypes: t.field({ type: [IdMappingInput] }),
    flavorId: t.string(),
    keyName: t.string(),
    securityGroups: t.stringList(),
  }),
});

const StartRestoreInput = builder.inputType('StartRestoreInput', {
  fields: (t) => ({
    backupId: t.id({ required: true }),
    projectId: t.id({ description: "Target project; defaults to the backup's" }),
    zoneId: t.id({ description: 'Target availability zone' }),
    name: t.string({ description: 'Name of the new instance (or volume)' }),
    mappings: t.field({ type: RestoreMappingsInput }),
    diskPosition: t.int({ description: 'Restore only this disk of the backup, as a new volume' }),
    verify: t.boolean({
      description: "Recompute every restored chunk's keyed hash as well (slower). Without it each chunk's AES-GCM seal, bound to its id, is the check",
    }),
    idempotencyKey: t.string(),
  }),
});

type Input = typeof StartRestoreInput.$inferInput;

function checkString(value: string | null | undefined, field: string[]) {
  if (value !== null && value !== undefined && (value.length < 1 || value.length > MAX_NAME)) {
    throw refuse('INVALID', `must be 1–${MAX_NAME} characters`, field);
  }
}

function checkMappings(m: NonNullable<Input['mappings']>): RestoreMappings {
  const lists = { networks: m.networks, images: m.images, volumeTypes: m.volumeTypes } as const;
  for (const [name, list] of Object.entries(lists)) {
    if (!list) continue;
    if (list.length > MAX_LIST) throw refuse('INVALID', `at most ${MAX_LIST} mappings`, ['mappings', name]);
    list.forEach((p, i) => {
      checkString(p.from, ['mappings', name, String(i), 'from']);
      checkString(p.to, ['mappings', name, String(i), 'to']);
    });
  }
  if (m.securityGroups && m.securityGroups.length > MAX_LIST) throw refuse('INVALID', `at most ${MAX_LIST} security groups`, ['mappings', 'securityGroups']);
  m.securityGroups?.forEach((g, i) => checkString(g, ['mappings', 'securityGroups', String(i)]));
  checkString(m.flavorId, ['mappings', 'flavorId']);
  checkString(m.keyName, ['mappings', 'keyName']);
  const pairs = (l?: readonly { from: string; to: string }[] | null) => l?.map(({ from, to }) => ({ from, to }));
  return {
    networks: pairs(m.networks),
    images: pairs(m.images),
    volumeTypes: pairs(m.volumeTypes),
    flavorId: m.flavorId ?? undefined,
    keyName: m.keyName ?? undefined,
    securityGroups: m.securityGroups ? [...m.securityGroups] : undefined,
  };
}

async function start(ctx: Context, em: EntityManager, input: Input) {
  checkString(input.name, ['name']);
  const mappings: RestoreMappings = input.mappings ? checkMappings(input.mappings) : {};

  const backupId = idOf(input.backupId, 'Backup', 'backupId');
  const targetProjectId = input.projectId != null ? idOf(input.projectId, 'Project', 'projectId') : null;
  const zoneId = input.zoneId != null ? idOf(input.zoneId, 'AvailabilityZone', 'zoneId') : null;
  const backup = await em.findOne(Backup, { $and: [{ id: backupId }, scopeWhere(ctx, 'Backup')] });
  if (!backup) throw notFound('backupId');
  if (backup.state !== 'AVAILABLE') throw refuse('BACKUP_NOT_AVAILABLE', `the backup is ${backup.state}, not AVAILABLE`, ['backupId']);

  // The target project goes through the caller's scope: a TENANT can only name its own.
  const project = await em.findOne(Project, { $and: [{ id: targetProjectId ?? backup.project.id }, scopeWhere(ctx, 'Project')] });
  if (!project) throw notFound('projectId');
  // The policy statements decide (src/auth/policy.ts): reading the backup, starting in the target.
  if (!can(ctx.viewer, 'backup:read', backup.project.id)) throw notFound('backupId');
  if (!can(ctx.viewer, 'task:start', project.id)) throw notFound('projectId');
  if (project.cloud.id !== backup.cloud.id) throw refuse('OTHER_CLOUD', "the target project is not in the backup's cloud", ['projectId']);

  let zone: AvailabilityZone | null = null;
  if (zoneId) {
    zone = await em.findOne(AvailabilityZone, { $and: [{ id: zoneId }, scopeWhere(ctx, 'AvailabilityZone')] }, { populate: ['projects'] });
    if (!zone || zone.cloud.id !== backup.cloud.id || !visibleTo(zone, project.id)) {
      throw refuse('ZONE_NOT_AVAILABLE', 'the zone is not available to the target project', ['zoneId']);
    }
  }

  if (input.diskPosition !== null && input.diskPosition !== undefined) {
    const disk = await em.findOne(BackupDisk, { backup: backup.id, position: input.diskPosition });
    if (!disk) throw refuse('DISK_NOT_FOUND', `the backup has no disk at position ${input.diskPosition}`, ['diskPosition']);
    mappings.diskPosition = input.diskPosition;
  }

  const instance = await em.findOne(Instance, { id: backup.instance.id });
  const name = input.name ?? `${instance?.name ?? 'instance'}-restore`;
  return createTask(
    em,
    {
      type: 'RESTORE',
      cloud: backup.cloud,
      project,
      instance: backup.instance,
      backup,
      destination: backup.destination,
      params: { name, zoneId: zone?.id ?? null, mappings, verify: input.verify ?? false },
    },
    actorOf(ctx),
    { backup, project, zone: zone ?? undefined, name, mappings, verify: input.verify ?? false },
  );
}

builder.mutationField('startRestore', (t) =>
  t.field({
    type: TaskPayloadRef,
    description: 'Restores a backup as a new instance (or one disk as a new volume); returns the QUEUED task at once',
    authScopes: { role: taskWriters },
    args: { input: t.arg({ type: StartRestoreInput, required: true }) },
    resolve: (_root, { input }, ctx) => runTaskMutation(ctx, 'startRestore', input, (em) => start(ctx, em, input)),
  }),
);
