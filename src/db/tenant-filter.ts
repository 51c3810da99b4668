// Fail-closed tenant isolation at the ORM level. The `tenant` filter is on by default and
// requires its parameters: a query on a fork that has not said whose data it may read throws.
// `projectIds: null` means "every project" (ADMIN, OPERATOR, BILLING, system jobs); a list
// restricts project-owned rows to those projects and visibility-scoped rows to ALL_PROJECTS
// or the chosen projects. The GraphQL loaders apply the same predicate (defence in depth).
import type { Dictionary } from '@mikro-orm/core';

export type TenantScope = { projectIds: string[] | null };

const ownedByProject = new Set(['Instance', 'Volume', 'Task', 'Backup', 'BackupDisk', 'Restore']);
const visibleToProjects = new Set(['Policy', 'BackupDestination', 'AvailabilityZone']);
/** Audit events name their project by ID (no foreign key: the trail outlives projects); none → system-wide. */
const auditedByProject = new Set(['AuditEvent']);

export function tenantCondition(entityName: string, scope: TenantScope): Dictionary {
  const ids = scope.projectIds;
  if (ids === null) return {};
  // No project at all (no caller, or a tenant whose projects are gone): match nothing. Not
  // `$in: []`, which MikroORM renders as invalid SQL (`in ()`) inside join conditions.
  if (ids.length === 0) return entityName === 'Project' || ownedByProject.has(entityName) || visibleToProjects.has(entityName) || auditedByProject.has(entityName) ? { id: null } : {};
  if (entityName === 'Project') return { id: { $in: ids } };
  if (auditedByProject.has(entityName)) return { projectId: { $in: ids } };
  if (ownedByProject.has(entityName)) return { project: { $in: ids } };
  if (visibleToProjects.has(entityName)) {
    return { $or: [{ visibility: 'ALL_PROJECTS' }, { projects: { $in: ids } }] };
  }
  return {};
}

export const tenantFilter = {
  name: 'tenant',
  default: true,
  args: true,
  cond: (args: Dictionary, _type: unknown, _em: unknown, _options: unknown, entityName?: string) => {
    if (!args || !('projectIds' in args)) throw new Error('tenant filter: the caller scope is not set');
    return tenantCondition(entityName ?? '', args as TenantScope);
  },
};
