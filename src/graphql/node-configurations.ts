// Node configurations: how a group of data movers works and what it serves.
import { NodeConfiguration } from '../db/entities/index.ts';
import { listRoles, readScope } from './access.ts';
import { builder } from './builder.ts';
import { connectionComplexity, keysetConnection, namedConnection } from './connections.ts';
import { pivotIds, registerNodeType, scopedLoad, viaLoader } from './node.ts';
import { BackupDestinationRef, CloudRef, NodeConfigurationRef } from './refs.ts';

registerNodeType('NodeConfiguration');

builder.loadableNode(NodeConfigurationRef, {
  description: 'How a group of data movers works, and the cloud and destinations it serves',
  id: { resolve: (n) => n.id },
  load: scopedLoad(NodeConfiguration, 'NodeConfiguration'),
  sort: (n) => n.id,
  fields: (t) => ({
    name: t.exposeString('name'),
    concurrentTasks: t.exposeInt('concurrentTasks'),
    stagingPath: t.exposeString('stagingPath'),
    attachmentLimit: t.exposeInt('attachmentLimit', { description: 'Most volumes attached at once to a proxy VM' }),
    proxyServerId: t.exposeString('proxyServerId', { nullable: true, description: 'Nova server ID of the proxy VM (disk attachment)' }),
    cloud: t.field({ type: CloudRef, nullable: true, resolve: (n) => viaLoader(n.cloud) }),
    destinations: t.field({
      type: [BackupDestinationRef],
      resolve: (n, _a, ctx) => pivotIds(ctx, 'backup_destination_node_configuration', 'node_configuration_id', 'backup_destination_id', n.id) as never,
    }),
    createdAt: t.field({ type: 'DateTime', resolve: (n) => n.createdAt }),
  }),
});

builder.queryField('nodeConfigurations', (t) =>
  t.connection(
    {
      type: NodeConfigurationRef,
      authScopes: { role: listRoles('NodeConfiguration') },
      complexity: connectionComplexity,
      resolve: (_root, args, ctx) => keysetConnection(ctx, NodeConfiguration, readScope(ctx, 'NodeConfiguration')!, args),
    },
    ...namedConnection('NodeConfiguration'),
  ),
);
