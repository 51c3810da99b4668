// An OpenStack project (tenant): the unit of isolation, quotas and billing.
import { EntitySchema, type Opt } from '@mikro-orm/core';
import { BaseEntity } from './base.ts';
import type { Cloud } from './cloud.ts';

export class Project extends BaseEntity {
  cloud!: Cloud;
  /** The project's ID in OpenStack. */
  externalId!: string;
  name!: string;
  domainId?: string;
  enabled: boolean & Opt = true;
  present: boolean & Opt = true;
}

export const ProjectSchema = new EntitySchema<Project, BaseEntity>({
  class: Project,
  extends: 'BaseEntity',
  uniques: [{ properties: ['cloud', 'externalId'] }],
  properties: {
    cloud: { kind: 'm:1', entity: 'Cloud', deleteRule: 'cascade' },
    externalId: { type: 'string', length: 255 },
    name: { type: 'string', length: 255 },
    domainId: { type: 'string', length: 255, nullable: true },
    enabled: { type: 'boolean' },
    present: { type: 'boolean' },
  },
});
