// Who may do what: RBAC as a table of policy statements, checked in one place (`can`).
// A statement allows or denies actions to a role over a resource scope: every project, or
// only the caller's own projects (TENANT). Deny wins; nothing allowed is denied (default deny).
// Which rows a caller sees is also enforced by the ORM's `tenant` filter (src/db/tenant-filter.ts);
// `can` decides whether an operation is permitted at all, and for which project.
import type { Role } from '../db/entities/index.ts';
import type { Viewer } from './viewer.ts';

export const Actions = [
  /** Clouds, projects, zones, instances, volumes, flavors/networks/images (the inventory). */
  'inventory:read',
  /** Policies, destinations and zones visible to the caller (what a tenant may choose from). */
  'policy:read',
  /** Every configuration object: clouds' settings, hypervisors, storage providers, destinations, node configurations, data movers, quotas. Never their secrets. */
  'config:read',
  /** Create/update configuration (clouds, destinations, policies, quotas, ...). */
  'config:write',
  /** Re-read a cloud's inventory (a task over every project of the cloud). */
  'inventory:sync',
  'task:read',
  /** Start backups and restores. */
  'task:start',
  'task:cancel',
  'backup:read',
  /** Delete a backup (a PRUNE task of that one backup). */
  'backup:delete',
  /** Apply retention now and verify destinations (PRUNE and VERIFY tasks over whole policies and destinations). */
  'maintenance:run',
  /** Size reports, front-end capacity, usage history, price cards. */
  'report:read',
  /** Quota rules and previews. */
  'quota:read',
  'audit:read',
  /** Service accounts: create, disable/enable, rotate secrets, list. */
  'account:manage',
] as const;
export type Action = (typeof Actions)[number];

export type Statement = {
  effect: 'allow' | 'deny';
  roles: Role[];
  actions: Action[] | '*';
  /** `all`: every project; `own`: only the projects the caller is scoped to. */
  resource: 'all' | 'own';
};

export const statements: readonly Statement[] = [
  { effect: 'allow', roles: ['ADMIN'], actions: '*', resource: 'all' },
  {
    effect: 'allow',
    roles: ['OPERATOR'],
    actions: ['inventory:read', 'policy:read', 'config:read', 'inventory:sync', 'task:read', 'task:start', 'task:cancel', 'backup:read', 'backup:delete', 'maintenance:run', 'quota:read'],
    resource: 'all',
  },
  // Operators run the service; they do not change it nor manage who may call it.
  { effect: 'deny', roles: ['OPERATOR'], actions: ['config:write', 'account:manage'], resource: 'all' },
  // Billing reads reports, and the usage behind them: backups' figures and the names of the
  // projects, instances, zones, policies and destinations that report rows are grouped by.
  // Nothing operational (tasks) and no configuration.
  { effect: 'allow', roles: ['BILLING'], actions: ['report:read', 'backup:read', 'inventory:read', 'policy:read'], resource: 'all' },
  {
    effect: 'allow',
    roles: ['TENANT'],
    // audit:read: the audit events of its own projects (the tenant filter keeps the rest out).
    actions: ['inventory:read', 'policy:read', 'task:read', 'task:start', 'task:cancel', 'backup:read', 'backup:delete', 'quota:read', 'audit:read'],
    resource: 'own',
  },
  // Belt and braces: whatever is added above, a tenant never writes configuration, reads
  // other tenants' reports or manages accounts.
  { effect: 'deny', roles: ['TENANT'], actions: ['config:write', 'config:read', 'inventory:sync', 'maintenance:run', 'report:read', 'account:manage'], resource: 'all' },
];

const matches = (s: Statement, role: Role, action: Action) =>
  s.roles.includes(role) && (s.actions === '*' || s.actions.includes(action));

/**
 * May `viewer` do `action`?
 * - `projectId` omitted: the action in general (e.g. list tasks; the rows are then scoped by the
 *   tenant filter).
 * - `projectId` a string: the action on that project's object (start a backup of its instance).
 * - `projectId` null: an object that belongs to no project (only `all`-scoped statements allow).
 */
export function can(viewer: Viewer | null, action: Action, projectId?: string | null): boolean {
  if (!viewer) return false;
  const applicable = statements.filter((s) => matches(s, viewer.role, action));
  if (applicable.some((s) => s.effect === 'deny')) return false;
  return applicable.some((s) => {
    if (s.effect !== 'allow') return false;
    if (s.resource === 'all') return true;
    if (projectId === undefined) return true;
    return projectId !== null && viewer.projectIds !== null && viewer.projectIds.includes(projectId);
  });
}

/** The roles allowed `action` (for documentation and tests). */
export function rolesAllowed(action: Action): Role[] {
  const roles: Role[] = ['ADMIN', 'OPERATOR', 'BILLING', 'TENANT'];
  return roles.filter((role) => can({ accountId: '', name: '', role, projectIds: role === 'TENANT' ? [] : null }, action));
}
