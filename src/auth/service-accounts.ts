// Service accounts: create, list, disable/enable, rotate secrets, change projects. The secret
// is random, shown once and stored only as a hash. Disabling an account or rotating its secret
// bumps its token generation, so every token issued before stops working at once.
import { randomBytes } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { decodeGlobalID } from '@pothos/plugin-relay';
import { AuditEntry, Project, ServiceAccount, type Role } from '../db/entities/index.ts';
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
  static ambiguousProject(id: string) {
    return new ServiceAccountError('AMBIGUOUS_PROJECT', `OpenStack project ID ${JSON.stringify(id)} exists in several clouds; use the project's global ID`, ['projectIds']);
  }
  static nameTaken(name: string) {
    return new ServiceAccountError('NAME_TAKEN', `a service account named ${JSON.stringify(name)} exists`, ['name']);
  }
  static invalidName() {
    return new ServiceAccountError('INVALID', 'name must be 1–200 characters', ['name']);
  }
  static notFound(ref: string) {
    return new ServiceAccountError('NOT_FOUND', `no service account ${JSON.stringify(ref)}`, ['id']);
  }
  static cannotDisableSelf() {
    return new ServiceAccountError('CANNOT_DISABLE_SELF', 'an account cannot disable itself', ['enabled']);
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The project's database ID inside a Relay global ID (`Project:<uuid>`, base64), or null. */
export function projectIdFromGlobalId(value: string): string | null {
  try {
    const { typename, id } = decodeGlobalID(value);
    return typename === 'Project' && UUID.test(id) ? id.toLowerCase() : null;
  } catch {
    return null;
  }
}

/**
 * Resolves what an operator or admin typed — a project's GraphQL global ID or its OpenStack
 * project ID — to database IDs. `em` must see every project (a system fork or an ADMIN's).
 */
export async function resolveProjectIds(em: EntityManager, refs: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const ref of refs) {
    const dbId = projectIdFromGlobalId(ref);
    const found = dbId
      ? await em.find(Project, { id: dbId })
      : ref.length > 0 && ref.length <= 255 ? await em.find(Project, { externalId: ref }) : [];
    if (found.length === 0) throw ServiceAccountError.unknownProject(ref);
    if (found.length > 1) throw ServiceAccountError.ambiguousProject(ref);
    if (!out.includes(found[0]!.id)) out.push(found[0]!.id);
  }
  return out;
}

function checkScope(role: Role, projectIds: readonly string[]) {
  if (role === 'TENANT' && projectIds.length === 0) throw ServiceAccountError.tenantNeedsProjects();
  if (role !== 'TENANT' && projectIds.length > 0) throw ServiceAccountError.projectsOnlyForTenants();
}

const newSecret = () => randomBytes(32).toString('base64url');

/** `projectIds` are database IDs of projects (see `resolveProjectIds`). */
export async function createServiceAccount(em: EntityManager, input: NewServiceAccount): Promise<{ account: ServiceAccount } & Credentials> {
  const projectIds = input.projectIds ?? [];
  if (input.name.length < 1 || input.name.length > 200) throw ServiceAccountError.invalidName();
  checkScope(input.role, projectIds);
  if (await em.count(ServiceAccount, { name: input.name })) throw ServiceAccountError.nameTaken(input.name);
  const projects = projectIds.length ? await em.find(Project, { id: { $in: projectIds } }) : [];
  for (const id of projectIds) if (!projects.some((p) => p.id === id)) throw ServiceAccountError.unknownProject(id);
  const clientId = `sb_${randomBytes(12).toString('hex')}`;
  const clientSecret = newSecret();
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

/** Finds an account by database ID, client ID or name. */
export async function findServiceAccount(em: EntityManager, ref: string): Promise<ServiceAccount> {
  const where = UUID.test(ref) ? { $or: [{ id: ref }, { clientId: ref }, { name: ref }] } : { $or: [{ clientId: ref }, { name: ref }] };
  const account = await em.findOne(ServiceAccount, where, { populate: ['projects'] });
  if (!account) throw ServiceAccountError.notFound(ref);
  return account;
}

export async function setEnabled(em: EntityManager, account: ServiceAccount, enabled: boolean): Promise<void> {
  if (account.enabled && !enabled) account.tokenGeneration += 1;
  account.enabled = enabled;
  await em.flush();
}

/** A new secret (returned once); the old secret and every token issued under it stop working. */
export async function rotateSecret(em: EntityManager, account: ServiceAccount): Promise<Credentials> {
  const clientSecret = newSecret();
  account.secretHash = await hashSecret(clientSecret);
  account.tokenGeneration += 1;
  await em.flush();
  return { clientId: account.clientId, clientSecret };
}

/** `projectIds` are database IDs. Takes effect on the account's next operation. */
export async function setProjects(em: EntityManager, account: ServiceAccount, projectIds: readonly string[]): Promise<void> {
  checkScope(account.role, projectIds);
  const projects = projectIds.length ? await em.find(Project, { id: { $in: [...projectIds] } }) : [];
  for (const id of projectIds) if (!projects.some((p) => p.id === id)) throw ServiceAccountError.unknownProject(id);
  account.projects.set(projects);
  await em.flush();
}

/** Records who changed an account (never the secret). `actor` is null for the CLI. */
export function auditAccountChange(
  em: EntityManager,
  actor: { accountId: string; name: string } | null,
  action: 'service-account.create' | 'service-account.update' | 'service-account.rotate-secret',
  account: ServiceAccount,
  details: Record<string, unknown> = {},
) {
  em.create(AuditEntry, {
    accountId: actor?.accountId,
    accountName: actor?.name ?? 'cli',
    action,
    objectType: 'ServiceAccount',
    objectId: account.id,
    details: { name: account.name, role: account.role, ...details },
  });
}
