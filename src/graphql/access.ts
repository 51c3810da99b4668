// Who may read which kind of row. Every loader and list query asks `readScope` for the
// predicate to add to its query (on top of the fork's fail-closed `tenant` filter): `null`
// means the caller may read none of them (a node answers null, a list is refused). Which roles
// hold each read action is decided in one place, the policy statements of src/auth/policy.ts.
import type { Dictionary } from '@mikro-orm/core';
import { can, rolesAllowed, type Action } from '../auth/policy.ts';
import type { Role } from '../db/entities/index.ts';
import { tenantCondition } from '../db/tenant-filter.ts';
import type { Context } from './context.ts';

/** The action that reading each kind of row needs; who holds it is in src/auth/policy.ts. */
export const readAction = {
  Cloud: 'config:read',
  CloudAuthDomain: 'config:read',
  Hypervisor: 'config:read',
  StorageProvider: 'config:read',
  NodeConfiguration: 'config:read',
  DataMover: 'config:read',
  Quota: 'config:read',
  Network: 'config:read',
  Project: 'inventory:read',
  Instance: 'inventory:read',
  Volume: 'inventory:read',
  AvailabilityZone: 'policy:read',
  Policy: 'policy:read',
  BackupDestination: 'policy:read',
  Flavor: 'inventory:read',
  Image: 'inventory:read',
  VolumeType: 'inventory:read',
  Task: 'task:read',
  Restore: 'task:read',
  Backup: 'backup:read',
  BackupDisk: 'backup:read',
  AuditEvent: 'audit:read',
} satisfies Record<string, Action>;

export type ReadableEntity = keyof typeof readAction;

/** The caller's predicate for `entity`, or null when it may read none. */
export function readScope(ctx: Context, entity: ReadableEntity): Dictionary | null {
  const viewer = ctx.viewer;
  if (!viewer || !can(viewer, readAction[entity])) return null;
  return tenantCondition(entity, { projectIds: viewer.projectIds });
}

/** Roles allowed to list `entity` (for a root field's authScopes). */
export function listRoles(entity: ReadableEntity): Role[] {
  return rolesAllowed(readAction[entity]);
}
