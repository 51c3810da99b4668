// Keystone v3: password tokens (project- and domain-scoped) with a catalog, projects, domains.
import { randomBytes } from 'node:crypto';
import { keystoneError, ok, route, type Ctx, type Route } from './http.ts';
import type { SimToken } from './model.ts';
import * as shape from './shapes.ts';

type NameOrId = { name?: string; id?: string };
type AuthBody = {
  auth?: {
    identity?: { methods?: string[]; password?: { user?: NameOrId & { password?: string; domain?: NameOrId } } };
    scope?: { project?: NameOrId & { domain?: NameOrId }; domain?: NameOrId };
  };
};

const unauthorized = () => keystoneError(401, 'Unauthorized', 'The request you have made requires authentication.');

function issue(ctx: Ctx, body: AuthBody) {
  const { state } = ctx.sim;
  const u = body.auth?.identity?.password?.user;
  if (!body.auth?.identity?.methods?.includes('password') || !u) throw keystoneError(400, 'Bad Request', 'Invalid input for field \'identity\': password is required');
  const userDomain = u.domain?.id ? state.domains.get(u.domain.id) : u.domain?.name ? state.domainByName(u.domain.name) : undefined;
  const user = u.id ? state.users.get(u.id) : [...state.users.values()].find((x) => x.name === u.name && x.domainId === userDomain?.id);
  if (!user || user.password !== u.password) throw unauthorized();

  const scope = body.auth?.scope;
  let projectId: string | undefined;
  let domainId: string | undefined;
  if (scope?.project) {
    const p = scope.project;
    const d = p.domain?.id ? state.domains.get(p.domain.id) : p.domain?.name ? state.domainByName(p.domain.name) : undefined;
    const project = p.id ? state.projects.get(p.id) : d && p.name ? state.projectByName(p.name, d.id) : undefined;
    if (!project) throw keystoneError(401, 'Unauthorized', `Could not find project: ${p.id ?? p.name}.`);
    projectId = project.id;
  } else if (scope?.domain) {
    const d = scope.domain.id ? state.domains.get(scope.domain.id) : state.domainByName(scope.domain.name ?? '');
    if (!d) throw keystoneError(401, 'Unauthorized', `Could not find domain: ${scope.domain.id ?? scope.domain.name}.`);
    domainId = d.id;
  }
  const roles = projectId || domainId ? state.rolesOf(user.id, { projectId, domainId }) : [];
  if ((projectId || domainId) && roles.length === 0) {
    throw keystoneError(401, 'Unauthorized', `User ${user.id} has no access to ${projectId ? `project ${projectId}` : `domain ${domainId}`}`);
  }
  const issuedAt = new Date();
  const t: SimToken = {
    value: `gAAAAA${randomBytes(90).toString('base64url')}`,
    userId: user.id,
    projectId,
    domainId,
    roles,
    issuedAt: issuedAt.toISOString(),
    expiresAt: new Date(issuedAt.getTime() + ctx.sim.tokenTtlSeconds * 1000).toISOString(),
    auditId: randomBytes(16).toString('base64url').slice(0, 22),
  };
  state.tokens.set(t.value, t);
  const catalog = projectId || domainId ? ctx.sim.catalog(projectId) : [];
  ctx.sim.tokensIssued++;
  return ok(shape.token(state, t, catalog), 201, { 'X-Subject-Token': t.value });
}

function requireAdmin(ctx: Ctx) {
  if (!ctx.token?.roles.includes('admin')) throw keystoneError(403, 'Forbidden', 'You are not authorized to perform the requested action: identity:list_projects.');
}

export const identityRoutes: Route[] = [
  route('POST', '/auth/tokens', async (ctx) => issue(ctx, await ctx.json<AuthBody>())),
  route('GET', '/projects', (ctx) => {
    requireAdmin(ctx);
    const domainId = ctx.query.get('domain_id');
    const name = ctx.query.get('name');
    const projects = [...ctx.sim.state.projects.values()].filter((p) => (!domainId || p.domainId === domainId) && (!name || p.name === name));
    return ok({ links: { next: null, previous: null, self: `${ctx.serviceUrl}/projects` }, projects: projects.map((p) => shape.project(p, ctx.serviceUrl)) });
  }),
  route('GET', '/projects/:id', (ctx) => {
    const p = ctx.sim.state.projects.get(ctx.params[0]!);
    if (!p) throw keystoneError(404, 'Not Found', `Could not find project: ${ctx.params[0]}.`);
    return ok({ project: shape.project(p, ctx.serviceUrl) });
  }),
  route('GET', '/auth/projects', (ctx) => {
    const { state } = ctx.sim;
    const ids = new Set(state.assignments.filter((a) => a.userId === ctx.token!.userId && a.projectId).map((a) => a.projectId!));
    return ok({ links: { next: null, previous: null, self: `${ctx.serviceUrl}/auth/projects` }, projects: [...ids].map((id) => shape.project(state.projects.get(id)!, ctx.serviceUrl)) });
  }),
  route('GET', '/domains', (ctx) => {
    requireAdmin(ctx);
    return ok({ domains: [...ctx.sim.state.domains.values()].map((d) => shape.domain(d, ctx.serviceUrl)), links: { next: null, previous: null, self: `${ctx.serviceUrl}/domains` } });
  }),
];
