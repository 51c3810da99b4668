// The caller of an operation: its account, role and project scope, read from the database on
// every operation so that disabling an account or changing its projects takes effect at once.
import type { EntityManager } from '@mikro-orm/postgresql';
import { ServiceAccount, type Role } from '../db/entities/index.ts';
import type { TenantScope } from '../db/tenant-filter.ts';
import type { TokenService } from './tokens.ts';

export type Viewer = {
  accountId: string;
  name: string;
  role: Role;
  /** null: every project (ADMIN, OPERATOR, BILLING); else the TENANT's projects. */
  projectIds: string[] | null;
  /** When the caller's token expires (graphql-ws closes the socket then). */
  expiresAt?: Date;
  /** The account's token generation the caller authenticated under (see service-accounts.ts). */
  tokenGeneration?: number;
};

export function scopeOf(viewer: Viewer | null): TenantScope {
  // No caller sees nothing: an empty list matches no project.
  return { projectIds: viewer ? viewer.projectIds : [] };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function bearerToken(header: string | null | undefined): string | null {
  const m = /^Bearer\s+([A-Za-z0-9._~+/=-]+)$/i.exec(header?.trim() ?? '');
  return m ? m[1]! : null;
}

/** `systemEm` must be a fork that sees every project (accounts are read before the scope is known). */
export async function viewerFromToken(tokens: TokenService, systemEm: EntityManager, token: string | null): Promise<Viewer | null> {
  if (!token) return null;
  const claims = await tokens.verify(token);
  if (!claims) return null;
  const viewer = await viewerForAccount(systemEm, claims.sub, claims.gen);
  return viewer && { ...viewer, expiresAt: new Date(claims.exp * 1000) };
}

/**
 * The account as a viewer, re-read from the database: null when it is gone, disabled, or its
 * token generation moved on (disabled and enabled again, secret rotated). Long-lived
 * operations (subscriptions) call it before each event with the viewer's `tokenGeneration`.
 */
export async function viewerForAccount(systemEm: EntityManager, accountId: string, tokenGeneration?: number): Promise<Viewer | null> {
  if (!UUID.test(accountId)) return null;
  const account = await systemEm.findOne(ServiceAccount, { id: accountId }, { populate: ['projects'] });
  if (!account || !account.enabled) return null;
  if (tokenGeneration !== undefined && account.tokenGeneration !== tokenGeneration) return null;
  return {
    accountId: account.id,
    name: account.name,
    role: account.role,
    projectIds: account.role === 'TENANT' ? account.projects.getItems().map((p) => p.id) : null,
    tokenGeneration: account.tokenGeneration,
  };
}
