// Data movers: the worker processes that move data (they register and heartbeat).
import { DataMover } from '../db/entities/index.ts';
import { listRoles, readScope } from './access.ts';
import { builder } from './builder.ts';
import { connectionComplexity, keysetConnection, namedConnection } from './connections.ts';
import { registerNodeType, scopedLoad, viaLoader } from './node.ts';
import { DataMoverRef, NodeConfigurationRef } from './refs.ts';

registerNodeType('DataMover');

builder.loadableNode(DataMoverRef, {
  description: 'A worker process that moves data',
  id: { resolve: (d) => d.id },
  load: scopedLoad(DataMover, 'DataMover'),
  sort: (d) => d.id,
  fields: (t) => ({
    name: t.exposeString('name'),
    host: t.exposeString('host'),
    pid: t.exposeInt('pid', { nullable: true }),
    version: t.exposeString('version', { nullable: true }),
    runningTasks: t.exposeInt('runningTasks'),
    lastHeartbeatAt: t.field({ type: 'DateTime', resolve: (d) => d.lastHeartbeatAt }),
    stoppedAt: t.field({ type: 'DateTime', nullable: true, resolve: (d) => d.stoppedAt ?? null }),
    nodeConfiguration: t.field({ type: NodeConfigurationRef, nullable: true, resolve: (d) => viaLoader(d.nodeConfiguration) }),
  }),
});

builder.queryField('dataMovers', (t) =>
  t.connection(
    {
      type: DataMoverRef,
      authScopes: { role: listRoles('DataMover') },
      complexity: connectionComplexity,
      resolve: (_root, args, ctx) => keysetConnection(ctx, DataMover, readScope(ctx, 'DataMover')!, args),
    },
    ...namedConnection('DataMover'),
  ),
);
