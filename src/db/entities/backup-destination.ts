// Where backups are stored: a repository on a file system, S3 or Swift. Settings hold the
// non-secret part (URL, region, segment size…); credentials are sealed apart.
import { Collection, EntitySchema, type Opt } from '@mikro-orm/core';
import { BaseEntity, type Sealed } from './base.ts';
import type { NodeConfiguration } from './node-configuration.ts';
import type { Project } from './project.ts';

export const DestinationKinds = ['FILE_SYSTEM', 'S3', 'SWIFT'] as const;
export type DestinationKind = (typeof DestinationKinds)[number];
export const Visibilities = ['ALL_PROJECTS', 'CHOSEN_PROJECTS'] as const;
export type Visibility = (typeof Visibilities)[number];

export class BackupDestination extends BaseEntity {
  name!: string;
  kind!: DestinationKind;
  /** `file:///…`, `s3://bucket/prefix?endpoint=…`, `swift://container/prefix?auth=…` */
  url!: string;
  settings: Record<string, unknown> & Opt = {};
  /** Sealed JSON of the credentials (S3 keys, Swift user/password). */
  credentials?: Sealed;
  encryption: boolean & Opt = true;
  compression: ('ZSTD' | 'NONE') & Opt = 'ZSTD';
  chunkSizeBytes: number & Opt = 1024 * 1024;
  isDefault: boolean & Opt = false;
  visibility: Visibility & Opt = 'ALL_PROJECTS';
  projects = new Collection<Project>(this);
  nodeConfigurations = new Collection<NodeConfiguration>(this);
}

export const BackupDestinationSchema = new EntitySchema<BackupDestination, BaseEntity>({
  class: BackupDestination,
  extends: 'BaseEntity',
  properties: {
    name: { type: 'string', length: 200, unique: true },
    kind: { enum: true, items: () => [...DestinationKinds] },
    url: { type: 'string', length: 2048 },
    settings: { type: 'json' },
    credentials: { type: 'text', nullable: true },
    encryption: { type: 'boolean' },
    compression: { enum: true, items: () => ['ZSTD', 'NONE'] },
    chunkSizeBytes: { type: 'integer' },
    isDefault: { type: 'boolean' },
    visibility: { enum: true, items: () => [...Visibilities] },
    projects: { kind: 'm:n', entity: 'Project', pivotTable: 'backup_destination_project' },
    nodeConfigurations: { kind: 'm:n', entity: 'NodeConfiguration', pivotTable: 'backup_destination_node_configuration' },
  },
});
