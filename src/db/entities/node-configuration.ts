// How a group of data movers works and what it serves: a whole cloud, some zones or single
// hypervisors (hypervisors and zones point here), and the destinations it may write.
import { Collection, EntitySchema, type Opt } from '@mikro-orm/core';
import { BaseEntity } from './base.ts';
import type { BackupDestination } from './backup-destination.ts';
import type { Cloud } from './cloud.ts';

export class NodeConfiguration extends BaseEntity {
  name!: string;
  concurrentTasks: number & Opt = 2;
  stagingPath: string & Opt = '/var/lib/strongbox/staging';
  /** Most volumes attached at once to a proxy VM (Cinder/Nova allow ~25). */
  attachmentLimit: number & Opt = 25;
  /** The cloud it serves as a whole, if any. */
  cloud?: Cloud;
  /** The Nova server ID of the proxy VM its data movers run in (disk attachment). */
  proxyServerId?: string;
  destinations = new Collection<BackupDestination>(this);
}

export const NodeConfigurationSchema = new EntitySchema<NodeConfiguration, BaseEntity>({
  class: NodeConfiguration,
  extends: 'BaseEntity',
  properties: {
    name: { type: 'string', length: 200, unique: true },
    concurrentTasks: { type: 'integer' },
    stagingPath: { type: 'string', length: 4096 },
    attachmentLimit: { type: 'integer' },
    cloud: { kind: 'm:1', entity: 'Cloud', nullable: true, deleteRule: 'set null' },
    proxyServerId: { type: 'string', length: 255, nullable: true },
    destinations: { kind: 'm:n', entity: 'BackupDestination', mappedBy: 'nodeConfigurations' },
  },
});
