// Creating service accounts: a random client ID and secret; the secret is shown once and
// stored only as a hash.
import { randomBytes } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { Project, ServiceAccount, type Role } from '../db/entities/index.ts';
import { hashSecret } from './passwords.ts';

export type NewServiceAccount = { name: string; role: Role; projectIds?: string[] };
export type Credentials = { clientId: string; clientSecret: string };

export class ServiceAccountError extends Error {
  constructor(readonly code: string, message: string, readonly field?: string[]) {
    super(message);
  }
  static tenantNeedsProjects() {
    return new ServiceAccountError('TENANT_NEEDS_PROJECTS', 'a TENANT account needs at least one project', ['projectIds']);
  }
  static projectsOnlyForTenants() {
    return new ServiceAccountError('PROJECTS_ONLY_FOR_TENANTS', 'only TENANT accounts are scoped to projects', ['projectIds']);
  }
  static unknownProject(id: string) {
    return new ServiceAccountError('UNKNOWN_PROJECT', `no project ${JSON.stringify(id)}`, ['projectIds']);
  }
  static nameTaken(name: string) {
    return new ServiceAccountError('NAME_TAKEN', `a service account named ${JSON.stringify(name)} exists`, ['name']);
  }
}

/** `projectIds` are database IDs of projects, already resolved by the caller. */
export async function createServiceAccount(em: EntityManager, input: NewServiceAccount): Promise<{ account: ServiceAccount } & Credentials> {
  const projectIds = input.projectIds ?? [];
  if (input.role === 'TENANT' && projectIds.length === 0) throw ServiceAccountError.tenantNeedsProjects();
  if (input.role !== 'TENANT' && projectIds.length > 0) throw ServiceAccountError.projectsOnlyForTenants();
  if (await em.count(ServiceAccount, { name: input.name })) throw ServiceAccountError.nameTaken(input.name);
  const projects = projectIds.length ? await em.find(Project, { id: { $in: projectIds } }) : [];
  for (const id of projectIds) if (!projects.some((p) => p.id === id)) throw ServiceAccountError.unknownProject(id);
  const clientId = `sb_${randomBytes(12).toString('hex')}`;
  const clientSecret = randomBytes(32).toString('base64url');
  const account = em.create(ServiceAccount, {
    name: input.name,
    role: input.role,
    clientId,
    secretHash: await hashSecret(clientSecret),
  });
  account.projects.set(projects);
  await em.flush();
  return { account, clientId, clientSecret };
}
