// An API client: an MSP system or a tenant's portal. Its secret is stored as a hash; TENANT
// accounts are scoped to projects.
import { Collection, EntitySchema, type Opt } from '@mikro-orm/core';
import { BaseEntity } from './base.ts';
import type { Project } from './project.ts';

export const Roles = ['ADMIN', 'OPERATOR', 'BILLING', 'TENANT'] as const;
export type Role = (typeof Roles)[number];

export class ServiceAccount extends BaseEntity {
  name!: string;
  role!: Role;
  clientId!: string;
  /** scrypt hash of the client secret ("scrypt$N$r$p$salt$hash"). */
  secretHash!: string;
  enabled: boolean & Opt = true;
  projects = new Collection<Project>(this);
  lastUsedAt?: Date;
  /** Tokens carry the generation they were issued under; disabling the account or rotating
   *  its secret bumps it, so every token issued before stops working at once (and stays dead
   *  after the account is enabled again). */
  tokenGeneration: number & Opt = 0;
}

export const ServiceAccountSchema = new EntitySchema<ServiceAccount, BaseEntity>({
  class: ServiceAccount,
  extends: 'BaseEntity',
  properties: {
    name: { type: 'string', length: 200, unique: true },
    role: { enum: true, items: () => [...Roles] },
    clientId: { type: 'string', length: 64, unique: true },
    secretHash: { type: 'string', length: 512 },
    enabled: { type: 'boolean' },
    projects: { kind: 'm:n', entity: 'Project', pivotTable: 'service_account_project' },
    lastUsedAt: { type: 'Date', columnType: 'timestamptz', nullable: true },
    tokenGeneration: { type: 'integer', default: 0 },
  },
});
