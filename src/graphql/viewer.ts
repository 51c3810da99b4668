// `viewer`: who is calling — name, role and the projects it may see.
import { builder } from './builder.ts';

type ViewerShape = { accountId: string; name: string; role: string; projectIds: string[] | null };

const ViewerRef = builder.objectRef<ViewerShape>('Viewer').implement({
  description: 'The calling service account',
  fields: (t) => ({
    name: t.exposeString('name'),
    role: t.exposeString('role'),
    allProjects: t.boolean({ description: 'True when the account sees every project', resolve: (v) => v.projectIds === null }),
  }),
});

builder.queryField('viewer', (t) =>
  t.field({
    type: ViewerRef,
    authScopes: { authenticated: true },
    resolve: (_root, _args, ctx) => ctx.viewer!,
  }),
);
