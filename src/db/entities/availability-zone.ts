// A Nova availability zone ("cluster"); may map to the Ceph storage provider behind it.
import { Collection, EntitySchema, type Opt } from '@mikro-orm/core';
import { BaseEntity } from './base.ts';
import type { Cloud } from './cloud.ts';
import type { StorageProvider } from './storage-provider.ts';
import type { NodeConfiguration } from './node-configuration.ts';
import type { Project } from './project.ts';
import type { Visibility } from './backup-destination.ts';
import { Visibilities } from './backup-destination.ts';

export class AvailabilityZone extends BaseEntity {
  cloud!: Cloud;
  name!: string;
  storageProvider?: StorageProvider;
  nodeConfiguration?: NodeConfiguration;
  /** Which projects may restore into this zone. */
  visibility: Visibility & Opt = 'ALL_PROJECTS';
  projects = new Collection<Project>(this);
}

export const AvailabilityZoneSchema = new EntitySchema<AvailabilityZone, BaseEntity>({
  class: AvailabilityZone,
  extends: 'BaseEntity',
  uniques: [{ properties: ['cloud', 'name'] }],
  properties: {
    cloud: { kind: 'm:1', entity: 'Cloud', deleteRule: 'cascade' },
    name: { type: 'string', length: 255 },
    storageProvider: { kind: 'm:1', entity: 'StorageProvider', nullable: true, deleteRule: 'set null' },
    nodeConfiguration: { kind: 'm:1', entity: 'NodeConfiguration', nullable: true, deleteRule: 'set null' },
    visibility: { enum: true, items: () => [...Visibilities] },
    projects: { kind: 'm:n', entity: 'Project', pivotTable: 'availability_zone_project' },
  },
});
