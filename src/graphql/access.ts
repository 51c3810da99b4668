// Who may read which kind of row, in one place. Every loader and list query asks `readScope`
// for the predicate to add to its query (on top of the fork's fail-closed `tenant` filter):
// `null` means the caller may read none of them (a node answers null, a list is refused).
//
//   configuration (clouds, auth domains, hypervisors, storage providers, node configurations,
//   data movers, quotas, networks): ADMIN, OPERATOR
//   projects, instances, volumes, zones, policies, destinations: ADMIN, OPERATOR, BILLING (to name
//   report rows), TENANT (its projects; zones/policies/destinations visible to them)
//   flavors, images, volume types: ADMIN, OPERATOR, TENANT (only those its instances/volumes use)
//   tasks, restores: ADMIN, OPERATOR, TENANT (its projects) — operations, not usage
//   backups and their disks: ADMIN, OPERATOR, BILLING (the figures it aggregates), TENANT (its projects)
import type { Dictionary } from '@mikro-orm/core';
import type { Role } from '../db/entities/index.ts';
import { tenantCondition } from '../db/tenant-filter.ts';
import type { Context } from './context.ts';

const STAFF: Role[] = ['ADMIN', 'OPERATOR'];
const NAMING: Role[] = ['ADMIN', 'OPERATOR', 'BILLING', 'TENANT'];
const CATALOG: Role[] = ['ADMIN', 'OPERATOR', 'TENANT'];

export const readers = {
  Cloud: STAFF,
  CloudAuthDomain: STAFF,
  Hypervisor: STAFF,
  StorageProvider: STAFF,
  NodeConfiguration: STAFF,
  DataMover: STAFF,
  Quota: STAFF,
  Network: STAFF,
  Project: NAMING,
  Instance: NAMING,
  Volume: NAMING,
  AvailabilityZone: NAMING,
  Policy: NAMING,
  BackupDestination: NAMING,
  Flavor: CATALOG,
  Image: CATALOG,
  VolumeType: CATALOG,
  Task: CATALOG,
  Restore: CATALOG,
  Backup: NAMING,
  BackupDisk: NAMING,
} satisfies Record<string, Role[]>;

export type ReadableEntity = keyof typeof readers;

/** The caller's predicate for `entity`, or null when it may read none. */
export function readScope(ctx: Context, entity: ReadableEntity): Dictionary | null {
  const viewer = ctx.viewer;
  if (!viewer || !(readers[entity] as Role[]).includes(viewer.role)) return null;
  return tenantCondition(entity, { projectIds: viewer.projectIds });
}

/** Roles allowed to list `entity` (for a root field's authScopes). */
export function listRoles(entity: ReadableEntity): Role[] {
  return [...readers[entity]];
}
