// A Ceph RBD cluster the data movers may read from directly (rbd diff between snapshots).
import { EntitySchema, type Opt } from '@mikro-orm/core';
import { BaseEntity, type Sealed } from './base.ts';
import type { NodeConfiguration } from './node-configuration.ts';

export const PoolStrategies = ['INCLUDE', 'EXCLUDE'] as const;
export type PoolStrategy = (typeof PoolStrategies)[number];

export class StorageProvider extends BaseEntity {
  name!: string;
  kind: 'CEPH_RBD' & Opt = 'CEPH_RBD';
  cephUser!: string;
  keyring!: Sealed;
  cephConf!: Sealed;
  poolStrategy: PoolStrategy & Opt = 'EXCLUDE';
  pools: string[] & Opt = [];
  nodeConfiguration?: NodeConfiguration;
}

export const StorageProviderSchema = new EntitySchema<StorageProvider, BaseEntity>({
  class: StorageProvider,
  extends: 'BaseEntity',
  properties: {
    name: { type: 'string', length: 200, unique: true },
    kind: { enum: true, items: () => ['CEPH_RBD'] },
    cephUser: { type: 'string', length: 255 },
    keyring: { type: 'text' },
    cephConf: { type: 'text' },
    poolStrategy: { enum: true, items: () => [...PoolStrategies] },
    pools: { type: 'json' },
    nodeConfiguration: { kind: 'm:1', entity: 'NodeConfiguration', nullable: true, deleteRule: 'set null' },
  },
});
