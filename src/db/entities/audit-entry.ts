// Who did what, when: every mutation, every quota alert, every token issued.
import { EntitySchema, type Opt } from '@mikro-orm/core';
import { BaseEntity } from './base.ts';

export class AuditEntry extends BaseEntity {
  accountId?: string;
  accountName?: string;
  action!: string;
  objectType?: string;
  objectId?: string;
  projectId?: string;
  details: Record<string, unknown> & Opt = {};
}

export const AuditEntrySchema = new EntitySchema<AuditEntry, BaseEntity>({
  class: AuditEntry,
  extends: 'BaseEntity',
  indexes: [{ properties: ['createdAt'] }, { properties: ['projectId', 'createdAt'] }],
  properties: {
    accountId: { type: 'uuid', nullable: true },
    accountName: { type: 'string', length: 200, nullable: true },
    action: { type: 'string', length: 100 },
    objectType: { type: 'string', length: 64, nullable: true },
    objectId: { type: 'string', length: 64, nullable: true },
    projectId: { type: 'uuid', nullable: true },
    details: { type: 'json' },
  },
});
