// Ceph RBD storage providers. The keyring and ceph.conf are sealed and never returned.
import { PoolStrategies, StorageProvider } from '../db/entities/index.ts';
import { listRoles, readScope } from './access.ts';
import { builder } from './builder.ts';
import { connectionComplexity, keysetConnection, namedConnection } from './connections.ts';
import { registerNodeType, scopedLoad, viaLoader } from './node.ts';
import { NodeConfigurationRef, StorageProviderRef } from './refs.ts';

registerNodeType('StorageProvider');

export const PoolStrategyEnum = builder.enumType('PoolStrategy', {
  description: 'INCLUDE: only the listed pools; EXCLUDE: every pool but the listed ones',
  values: PoolStrategies,
});

builder.loadableNode(StorageProviderRef, {
  description: 'A Ceph RBD cluster the data movers may read directly; keyring and ceph.conf are never returned',
  id: { resolve: (s) => s.id },
  load: scopedLoad(StorageProvider, 'StorageProvider'),
  sort: (s) => s.id,
  fields: (t) => ({
    name: t.exposeString('name'),
    kind: t.string({ resolve: (s) => s.kind }),
    cephUser: t.exposeString('cephUser'),
    hasKeyring: t.boolean({ resolve: (s) => Boolean(s.keyring) }),
    hasCephConf: t.boolean({ resolve: (s) => Boolean(s.cephConf) }),
    poolStrategy: t.field({ type: PoolStrategyEnum, resolve: (s) => s.poolStrategy }),
    pools: t.stringList({ resolve: (s) => s.pools }),
    nodeConfiguration: t.field({ type: NodeConfigurationRef, nullable: true, resolve: (s) => viaLoader(s.nodeConfiguration) }),
  }),
});

builder.queryField('storageProviders', (t) =>
  t.connection(
    {
      type: StorageProviderRef,
      description: 'Ceph storage providers (ADMIN, OPERATOR)',
      authScopes: { role: listRoles('StorageProvider') },
      complexity: connectionComplexity,
      resolve: (_root, args, ctx) => keysetConnection(ctx, StorageProvider, readScope(ctx, 'StorageProvider')!, args),
    },
    ...namedConnection('StorageProvider'),
  ),
);
