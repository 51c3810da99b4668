// Neutron v2.0: networks, ports (list by device/network/project, create, delete), security groups.
import { neutronError, ok, route, type Ctx, type Route } from './http.ts';
import * as shape from './shapes.ts';

const isAdmin = (ctx: Ctx) => ctx.token!.roles.includes('admin');

export const networkRoutes: Route[] = [
  route('GET', '/v2.0/networks', (ctx) => ok({
    networks: [...ctx.sim.state.networks.values()].filter((n) => isAdmin(ctx) || n.shared || n.projectId === ctx.token!.projectId).map(shape.network),
  })),
  route('GET', '/v2.0/ports', (ctx) => {
    const q = ctx.query;
    const ports = [...ctx.sim.state.ports.values()].filter((p) => (isAdmin(ctx) || p.projectId === ctx.token!.projectId)
      && (!q.get('device_id') || p.deviceId === q.get('device_id')) && (!q.get('network_id') || p.networkId === q.get('network_id'))
      && (!q.get('project_id') || p.projectId === q.get('project_id')));
    return ok({ ports: ports.map((p) => shape.port(p, ctx.sim.state.networks.get(p.networkId)?.subnetId ?? '')) });
  }),
  route('POST', '/v2.0/ports', async (ctx) => {
    const b = (await ctx.json<{ port?: { network_id?: string; name?: string; project_id?: string; security_groups?: string[] } }>()).port;
    if (!b?.network_id || !ctx.sim.state.networks.has(b.network_id)) throw neutronError(404, 'NetworkNotFound', `Network ${b?.network_id} could not be found.`);
    const p = ctx.sim.createPort({ networkId: b.network_id, projectId: b.project_id ?? ctx.token!.projectId!, name: b.name, securityGroups: b.security_groups });
    return ok({ port: shape.port(p, ctx.sim.state.networks.get(p.networkId)!.subnetId) }, 201);
  }),
  route('DELETE', '/v2.0/ports/:id', (ctx) => {
    if (!ctx.sim.state.ports.delete(ctx.params[0]!)) throw neutronError(404, 'PortNotFound', `Port ${ctx.params[0]} could not be found.`);
    return { status: 204 };
  }),
  route('GET', '/v2.0/security-groups', (ctx) => {
    const pid = ctx.query.get('project_id');
    return ok({ security_groups: [...ctx.sim.state.securityGroups.values()].filter((g) => (isAdmin(ctx) || g.projectId === ctx.token!.projectId) && (!pid || g.projectId === pid)).map(shape.securityGroup) });
  }),
];
