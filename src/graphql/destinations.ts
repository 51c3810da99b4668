// Backup destinations (file system, S3, Swift). Credentials are sealed and never returned:
// the API says only whether there are some (`hasCredentials`).
import { BackupDestination, DestinationKinds } from '../db/entities/index.ts';
import { listRoles, readScope } from './access.ts';
import { builder } from './builder.ts';
import { VisibilityEnum } from './clouds.ts';
import { connectionComplexity, keysetConnection, namedConnection } from './connections.ts';
import { pivotIds, registerNodeType, scopedLoad, visibleProjectIds } from './node.ts';
import { BackupDestinationRef, NodeConfigurationRef, ProjectRef } from './refs.ts';

registerNodeType('BackupDestination');

export const DestinationKindEnum = builder.enumType('DestinationKind', { values: DestinationKinds });
export const CompressionEnum = builder.enumType('Compression', { values: ['ZSTD', 'NONE'] as const });

builder.loadableNode(BackupDestinationRef, {
  description: 'Where backups are stored: a repository on a file system, S3 or Swift',
  id: { resolve: (d) => d.id },
  load: scopedLoad(BackupDestination, 'BackupDestination'),
  sort: (d) => d.id,
  fields: (t) => ({
    name: t.exposeString('name'),
    kind: t.field({ type: DestinationKindEnum, resolve: (d) => d.kind }),
    url: t.exposeString('url', { description: '`file:///…`, `s3://bucket/prefix?endpoint=…`, `swift://container/prefix?auth=…`' }),
    settings: t.field({ type: 'JSON', description: 'Non-secret settings (region, endpoint, segment size…)', resolve: (d) => d.settings }),
    hasCredentials: t.boolean({ description: 'Whether credentials are stored (they are never returned)', resolve: (d) => Boolean(d.credentials) }),
    encryption: t.exposeBoolean('encryption'),
    compression: t.field({ type: CompressionEnum, resolve: (d) => d.compression }),
    chunkSizeBytes: t.exposeInt('chunkSizeBytes'),
    isDefault: t.exposeBoolean('isDefault'),
    visibility: t.field({ type: VisibilityEnum, resolve: (d) => d.visibility }),
    projects: t.field({
      type: [ProjectRef],
      description: 'The chosen projects (a TENANT sees only its own among them)',
      resolve: (d, _a, ctx) => visibleProjectIds(ctx, 'backup_destination_project', 'backup_destination_id', d.id) as never,
    }),
    nodeConfigurations: t.field({
      type: [NodeConfigurationRef],
      description: 'Node configurations that may write here (empty for callers that may not read configuration)',
      resolve: async (d, _a, ctx) =>
        (readScope(ctx, 'NodeConfiguration') ? await pivotIds(ctx, 'backup_destination_node_configuration', 'backup_destination_id', 'node_configuration_id', d.id) : []) as never,
    }),
    createdAt: t.field({ type: 'DateTime', resolve: (d) => d.createdAt }),
  }),
});

builder.queryField('backupDestinations', (t) =>
  t.connection(
    {
      type: BackupDestinationRef,
      authScopes: { role: listRoles('BackupDestination') },
      complexity: connectionComplexity,
      resolve: (_root, args, ctx) => keysetConnection(ctx, BackupDestination, readScope(ctx, 'BackupDestination')!, args),
    },
    ...namedConnection('BackupDestination'),
  ),
);
