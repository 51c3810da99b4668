// A quota rule, assigned to projects: at most `hardLimit` (refused) and `softLimit` (alerted)
// backups/restores, counted or summed in bytes, per instance or project, over a time window.
import { BigIntType, Collection, EntitySchema } from '@mikro-orm/core';
import { BaseEntity } from './base.ts';
import type { Project } from './project.ts';

export const QuotaActions = ['BACKUP', 'RESTORE'] as const;
export const QuotaScopes = ['INSTANCE', 'PROJECT'] as const;
export const QuotaMeasures = ['COUNT', 'BYTES'] as const;

export class Quota extends BaseEntity {
  name!: string;
  action!: (typeof QuotaActions)[number];
  scope!: (typeof QuotaScopes)[number];
  measure!: (typeof QuotaMeasures)[number];
  windowSeconds!: number;
  softLimit?: bigint;
  hardLimit?: bigint;
  projects = new Collection<Project>(this);
}

export const QuotaSchema = new EntitySchema<Quota, BaseEntity>({
  class: Quota,
  extends: 'BaseEntity',
  properties: {
    name: { type: 'string', length: 200, unique: true },
    action: { enum: true, items: () => [...QuotaActions] },
    scope: { enum: true, items: () => [...QuotaScopes] },
    measure: { enum: true, items: () => [...QuotaMeasures] },
    windowSeconds: { type: 'integer' },
    softLimit: { type: new BigIntType('bigint'), nullable: true },
    hardLimit: { type: new BigIntType('bigint'), nullable: true },
    projects: { kind: 'm:n', entity: 'Project', pivotTable: 'quota_assignment' },
  },
});
