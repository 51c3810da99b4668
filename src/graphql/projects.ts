// Projects (OpenStack tenants): the unit of isolation. A TENANT sees only its own.
import { Project } from '../db/entities/index.ts';
import { listRoles, readScope } from './access.ts';
import { builder } from './builder.ts';
import { connectionComplexity, keysetConnection, namedConnection } from './connections.ts';
import { parseGlobalId, registerNodeType, scopedLoad, viaLoader } from './node.ts';
import { CloudRef, ProjectRef } from './refs.ts';
import { containsPattern, idFilter } from './filters.ts';

registerNodeType('Project');

builder.loadableNode(ProjectRef, {
  description: 'An OpenStack project (tenant)',
  id: { resolve: (p) => p.id },
  load: scopedLoad(Project, 'Project'),
  sort: (p) => p.id,
  fields: (t) => ({
    externalId: t.exposeString('externalId', { description: "The project's ID in OpenStack" }),
    name: t.exposeString('name'),
    domainId: t.exposeString('domainId', { nullable: true }),
    enabled: t.exposeBoolean('enabled'),
    present: t.exposeBoolean('present', { description: 'False once the project is gone from the cloud' }),
    cloud: t.field({ type: CloudRef, nullable: true, description: 'Null for callers that may not read cloud configuration', resolve: (p) => viaLoader(p.cloud) }),
    createdAt: t.field({ type: 'DateTime', resolve: (p) => p.createdAt }),
  }),
});

const ProjectFilter = builder.inputType('ProjectFilter', {
  fields: (t) => ({
    cloudId: t.id({ description: 'Only projects of this cloud' }),
    nameContains: t.string({ description: 'Case-insensitive part of the name' }),
    present: t.boolean(),
  }),
});

builder.queryField('projects', (t) =>
  t.connection(
    {
      type: ProjectRef,
      authScopes: { role: listRoles('Project') },
      complexity: connectionComplexity,
      args: { filter: t.arg({ type: ProjectFilter }) },
      resolve: (_root, args, ctx) => {
        const f = args.filter ?? {};
        const where: Record<string, unknown>[] = [readScope(ctx, 'Project')!];
        if (f.cloudId != null) where.push({ cloud: idFilter(parseGlobalId(String(f.cloudId), 'Cloud')) });
        if (f.nameContains != null) where.push({ name: { $ilike: containsPattern(f.nameContains) } });
        if (f.present != null) where.push({ present: f.present });
        return keysetConnection(ctx, Project, { $and: where }, args);
      },
    },
    ...namedConnection('Project'),
  ),
);
