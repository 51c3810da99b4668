// Instances (Nova servers, also those gone from the cloud that still have backups) and their
// volumes. A TENANT sees only its projects' rows. `lastBackup` is added by the tasks/backups area.
import { Instance, Volume, VolumeKinds } from '../db/entities/index.ts';
import { listRoles, readScope } from './access.ts';
import { builder } from './builder.ts';
import type { Context } from './context.ts';
import { connectionComplexity, keysetConnection, namedConnection } from './connections.ts';
import { containsPattern, idFilter } from './filters.ts';
import { parseGlobalId, registerNodeType, scopedLoad, viaLoader } from './node.ts';
import {
  AvailabilityZoneRef, CloudRef, FlavorRef, HypervisorRef, ImageRef, InstanceRef, PolicyRef, ProjectRef, VolumeRef, VolumeTypeRef,
} from './refs.ts';

registerNodeType('Instance');
registerNodeType('Volume');

export const VolumeKindEnum = builder.enumType('VolumeKind', { values: VolumeKinds });

builder.loadableNode(InstanceRef, {
  description: 'A Nova server; kept (present: false) when it is gone from the cloud, so its backups stay restorable',
  id: { resolve: (i) => i.id },
  load: scopedLoad(Instance, 'Instance'),
  sort: (i) => i.id,
  fields: (t) => ({
    externalId: t.exposeString('externalId', { description: "The server's ID in OpenStack" }),
    name: t.exposeString('name'),
    status: t.exposeString('status', { nullable: true }),
    present: t.exposeBoolean('present'),
    project: t.field({ type: ProjectRef, resolve: (i) => viaLoader(i.project) }),
    cloud: t.field({ type: CloudRef, nullable: true, resolve: (i) => viaLoader(i.cloud) }),
    zone: t.field({ type: AvailabilityZoneRef, nullable: true, resolve: (i) => viaLoader(i.zone) }),
    hypervisor: t.field({ type: HypervisorRef, nullable: true, resolve: (i) => viaLoader(i.hypervisor) }),
    flavor: t.field({ type: FlavorRef, nullable: true, resolve: (i) => viaLoader(i.flavor) }),
    image: t.field({ type: ImageRef, nullable: true, resolve: (i) => viaLoader(i.image) }),
    policy: t.field({ type: PolicyRef, nullable: true, description: 'The policy assigned directly', resolve: (i) => viaLoader(i.policy) }),
    volumes: t.loadableGroup({
      type: VolumeRef,
      load: async (instanceIds: string[], ctx: Context) => {
        const scope = readScope(ctx, 'Volume');
        return scope ? ctx.em.find(Volume, { $and: [{ instance: { $in: instanceIds } }, scope] }, { orderBy: { id: 'asc' } }) : [];
      },
      group: (v) => v.instance!.id,
      resolve: (i) => i.id,
    }),
    lastSeenAt: t.field({ type: 'DateTime', nullable: true, resolve: (i) => i.lastSeenAt ?? null }),
    createdAt: t.field({ type: 'DateTime', resolve: (i) => i.createdAt }),
  }),
});

builder.loadableNode(VolumeRef, {
  description: 'A disk of an instance: a Cinder volume, a Nova root disk or an ephemeral disk',
  id: { resolve: (v) => v.id },
  load: scopedLoad(Volume, 'Volume'),
  sort: (v) => v.id,
  fields: (t) => ({
    externalId: t.exposeString('externalId'),
    name: t.exposeString('name'),
    kind: t.field({ type: VolumeKindEnum, resolve: (v) => v.kind }),
    sizeBytes: t.field({ type: 'Bytes', resolve: (v) => v.sizeBytes }),
    bootIndex: t.exposeInt('bootIndex', { nullable: true }),
    device: t.exposeString('device', { nullable: true }),
    present: t.exposeBoolean('present'),
    volumeType: t.field({ type: VolumeTypeRef, nullable: true, resolve: (v) => viaLoader(v.volumeType) }),
    instance: t.field({ type: InstanceRef, nullable: true, resolve: (v) => viaLoader(v.instance) }),
    project: t.field({ type: ProjectRef, resolve: (v) => viaLoader(v.project) }),
  }),
});

const InstanceFilter = builder.inputType('InstanceFilter', {
  fields: (t) => ({
    projectId: t.id(),
    zoneId: t.id(),
    policyId: t.id({ description: 'Instances with this policy assigned directly' }),
    nameContains: t.string({ description: 'Case-insensitive part of the name' }),
    present: t.boolean({ description: 'false: only instances gone from the cloud' }),
  }),
});

builder.queryField('instances', (t) =>
  t.connection(
    {
      type: InstanceRef,
      authScopes: { role: listRoles('Instance') },
      complexity: connectionComplexity,
      args: { filter: t.arg({ type: InstanceFilter }) },
      resolve: (_root, args, ctx) => {
        const f = args.filter ?? {};
        const where: Record<string, unknown>[] = [readScope(ctx, 'Instance')!];
        if (f.projectId != null) where.push({ project: idFilter(parseGlobalId(String(f.projectId), 'Project')) });
        if (f.zoneId != null) where.push({ zone: idFilter(parseGlobalId(String(f.zoneId), 'AvailabilityZone')) });
        if (f.policyId != null) where.push({ policy: idFilter(parseGlobalId(String(f.policyId), 'Policy')) });
        if (f.nameContains != null) where.push({ name: { $ilike: containsPattern(f.nameContains) } });
        if (f.present != null) where.push({ present: f.present });
        return keysetConnection(ctx, Instance, { $and: where }, args);
      },
    },
    ...namedConnection('Instance'),
  ),
);
