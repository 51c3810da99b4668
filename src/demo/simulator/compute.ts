// Nova v2.1: servers (detail with all_tenants and marker paging, show, create, delete),
// flavors, availability zones, hypervisors, volume attachments.
import { randomUUID } from 'node:crypto';
import { novaError, ok, route, type Ctx, type Route } from './http.ts';
import { nowIso, type SimServer } from './model.ts';
import * as shape from './shapes.ts';

const MAX_LIMIT = 1000;

function visibleServer(ctx: Ctx, id: string): SimServer {
  const s = ctx.sim.state.servers.get(id);
  if (!s || s.deleted || (!ctx.token!.roles.includes('admin') && s.projectId !== ctx.token!.projectId)) {
    throw novaError(404, `Instance ${id} could not be found.`);
  }
  return s;
}

function listServers(ctx: Ctx, detail: boolean) {
  const t = ctx.token!;
  const allTenants = ['1', 'true', 'True'].includes(ctx.query.get('all_tenants') ?? '');
  if (allTenants && !t.roles.includes('admin')) {
    throw novaError(403, "Policy doesn't allow os_compute_api:servers:detail:get_all_tenants to be performed.");
  }
  const projectFilter = ctx.query.get('project_id') ?? ctx.query.get('tenant_id');
  let servers = ctx.sim.state.liveServers().filter((s) =>
    allTenants ? (!projectFilter || s.projectId === projectFilter) : s.projectId === t.projectId);
  const marker = ctx.query.get('marker');
  if (marker) {
    const i = servers.findIndex((s) => s.id === marker);
    if (i < 0) throw novaError(400, `marker [${marker}] not found`);
    servers = servers.slice(i + 1);
  }
  const limit = Math.min(Number(ctx.query.get('limit') ?? MAX_LIMIT), MAX_LIMIT);
  const page = servers.slice(0, limit);
  const body: Record<string, unknown> = {
    servers: page.map((s) => (detail
      ? shape.server(ctx.sim.state, s, ctx.mv, ctx.serviceUrl, ctx.rootUrl)
      : { id: s.id, links: [{ href: `${ctx.serviceUrl}/servers/${s.id}`, rel: 'self' }], name: s.name })),
  };
  if (page.length === limit && servers.length > limit) {
    const next = new URLSearchParams(ctx.query);
    next.set('limit', String(limit));
    next.set('marker', page[page.length - 1]!.id);
    body.servers_links = [{ href: `${ctx.serviceUrl}/servers${detail ? '/detail' : ''}?${next}`, rel: 'next' }];
  }
  return ok(body);
}

type CreateBody = {
  server?: {
    name?: string; flavorRef?: string; imageRef?: string; availability_zone?: string; key_name?: string;
    security_groups?: { name: string }[]; networks?: 'none' | 'auto' | { uuid?: string; port?: string }[];
    block_device_mapping_v2?: { boot_index?: number | string | null; uuid?: string; source_type?: string; destination_type?: string; delete_on_termination?: boolean; device_name?: string }[];
    metadata?: Record<string, string>;
  };
};

async function createServer(ctx: Ctx) {
  const { sim } = ctx;
  const { state } = sim;
  const body = (await ctx.json<CreateBody>()).server;
  if (!body?.name || !body.flavorRef) throw novaError(400, "Invalid input for field/attribute server. Value: missing 'name' or 'flavorRef'");
  if (!state.flavors.has(body.flavorRef)) throw novaError(400, `Flavor ${body.flavorRef} could not be found.`);
  if (body.imageRef && !state.images.has(body.imageRef)) throw novaError(400, `Image ${body.imageRef} could not be found.`);
  if (body.imageRef && state.images.get(body.imageRef)!.status !== 'active') throw novaError(400, `Image ${body.imageRef} is not active.`);
  if (body.networks === undefined) throw novaError(400, "Invalid input for field/attribute server. Value: missing 'networks' (required from 2.37)");
  const zone = body.availability_zone ?? state.zones[0]!;
  if (!state.zones.includes(zone)) throw novaError(400, `The requested availability zone is not available`);
  const bdms = body.block_device_mapping_v2 ?? [];
  for (const b of bdms) {
    if (b.source_type !== 'volume') throw novaError(400, 'Only source_type volume is supported by this simulator');
    const v = state.volumes.get(b.uuid ?? '');
    if (!v) throw novaError(400, `Volume ${b.uuid} could not be found.`);
    if (v.status !== 'available') throw novaError(400, `Invalid volume: volume ${v.id} status must be available`);
  }
  const hv = state.hypervisors.find((h) => h.zone === zone) ?? state.hypervisors[0]!;
  const now = nowIso();
  const id = randomUUID();
  const s: SimServer = {
    id, name: body.name, projectId: ctx.token!.projectId!, userId: ctx.token!.userId, status: 'BUILD', vmState: 'building',
    taskState: 'spawning', flavorId: body.flavorRef, imageId: body.imageRef ?? null, zone, host: hv.hostname, keyName: body.key_name ?? null,
    metadata: body.metadata ?? {}, instanceName: sim.driverFor(hv.hostname)?.instanceName(id) ?? `instance-${(state.servers.size + 1).toString(16).padStart(8, '0')}`,
    securityGroups: (body.security_groups ?? [{ name: 'default' }]).map((g) => g.name), createdAt: now, updatedAt: now, launchedAt: null,
    reservationId: `r-${randomUUID().slice(0, 8)}`, bdms: [], deleted: false,
  };
  state.servers.set(s.id, s);
  if (Array.isArray(body.networks)) {
    for (const n of body.networks) {
      if (n.port) sim.bindPort(n.port, s.id);
      else if (n.uuid) {
        const port = sim.createPort({ networkId: n.uuid, projectId: s.projectId });
        port.novaCreated = true;
        sim.bindPort(port.id, s.id);
      }
    }
  }
  for (const [i, b] of bdms.entries()) {
    const boot = b.boot_index === null || b.boot_index === undefined ? null : Number(b.boot_index);
    sim.beginAttach(s, state.volumes.get(b.uuid!)!, { device: b.device_name ?? `/dev/vd${String.fromCharCode(97 + i + (body.imageRef ? 1 : 0))}`, bootIndex: boot, deleteOnTermination: !!b.delete_on_termination, force: true });
  }
  const driver = body.imageRef ? sim.driverFor(s.host) : undefined;
  sim.later(async () => {
    if (driver) {
      // As nova-compute does: the image's bytes under _base, the root disk sized to the flavor.
      const image = state.images.get(body.imageRef!)!;
      const flavor = state.flavors.get(s.flavorId)!;
      try {
        await driver.spawn(s, { id: image.id, path: sim.files.imagePath(image.id), diskFormat: image.diskFormat }, flavor.disk * sim.gibBytes);
      } catch (e) {
        Object.assign(s, { status: 'ERROR', vmState: 'error', taskState: null, updatedAt: nowIso() });
        throw e;
      }
    }
    s.status = 'ACTIVE';
    s.vmState = 'active';
    s.taskState = null;
    s.launchedAt = s.updatedAt = nowIso();
  });
  return ok({ server: { 'OS-DCF:diskConfig': 'MANUAL', adminPass: 'sim-not-a-secret', id: s.id, links: [{ href: `${ctx.serviceUrl}/servers/${s.id}`, rel: 'self' }], security_groups: s.securityGroups.map((name) => ({ name })) } }, 202);
}

/** os-stop and os-start: the domain is destroyed or started by the compute driver, if any. */
async function serverAction(ctx: Ctx) {
  const s = visibleServer(ctx, ctx.params[0]!);
  const body = await ctx.json<Record<string, unknown>>();
  const action = 'os-stop' in body ? 'stop' : 'os-start' in body ? 'start' : null;
  if (!action) throw novaError(400, 'This simulator supports the os-stop and os-start actions only');
  const from = action === 'stop' ? 'ACTIVE' : 'SHUTOFF';
  if (s.status !== from || s.taskState) throw novaError(409, `Cannot 'os-${action}' instance ${s.id} while it is in vm_state ${s.vmState}`);
  s.taskState = action === 'stop' ? 'powering-off' : 'powering-on';
  const driver = ctx.sim.driverFor(s.host);
  ctx.sim.later(async () => {
    try {
      if (driver && s.imageId) await (action === 'stop' ? driver.stop(s) : driver.start(s));
    } finally {
      s.taskState = null;
      s.updatedAt = nowIso();
    }
    s.status = action === 'stop' ? 'SHUTOFF' : 'ACTIVE';
    s.vmState = action === 'stop' ? 'stopped' : 'active';
  });
  return { status: 202 };
}

export const computeRoutes: Route[] = [
  route('GET', '/servers/detail', (ctx) => listServers(ctx, true)),
  route('GET', '/servers', (ctx) => listServers(ctx, false)),
  route('POST', '/servers', createServer),
  route('GET', '/servers/:id', (ctx) => ok({ server: shape.server(ctx.sim.state, visibleServer(ctx, ctx.params[0]!), ctx.mv, ctx.serviceUrl, ctx.rootUrl) })),
  route('DELETE', '/servers/:id', (ctx) => {
    ctx.sim.deleteServer(visibleServer(ctx, ctx.params[0]!));
    return { status: 204 };
  }),
  route('POST', '/servers/:id/action', serverAction),
  route('GET', '/flavors/detail', (ctx) => ok({ flavors: [...ctx.sim.state.flavors.values()].map((f) => shape.flavor(f, ctx.serviceUrl, ctx.rootUrl)) })),
  route('GET', '/flavors/:id', (ctx) => {
    const f = ctx.sim.state.flavors.get(ctx.params[0]!);
    if (!f) throw novaError(404, `Flavor ${ctx.params[0]} could not be found.`);
    return ok({ flavor: shape.flavor(f, ctx.serviceUrl, ctx.rootUrl) });
  }),
  route('GET', '/os-availability-zone/detail', (ctx) => ok(shape.zonesDetail(ctx.sim.state))),
  route('GET', '/os-availability-zone', (ctx) => ok({ availabilityZoneInfo: ctx.sim.state.zones.map((z) => ({ hosts: null, zoneName: z, zoneState: { available: true } })) })),
  route('GET', '/os-hypervisors/detail', (ctx) => {
    if (!ctx.token!.roles.includes('admin')) throw novaError(403, "Policy doesn't allow os_compute_api:os-hypervisors:list-detail to be performed.");
    const live = ctx.sim.state.liveServers();
    return ok({ hypervisors: ctx.sim.state.hypervisors.map((h) => shape.hypervisor(h, live.filter((s) => s.host === h.hostname).length)) });
  }),
  route('GET', '/servers/:id/os-volume_attachments', (ctx) => {
    const s = visibleServer(ctx, ctx.params[0]!);
    return ok({ volumeAttachments: s.bdms.map((b) => shape.novaAttachment(s, b, ctx.mv)) });
  }),
  route('POST', '/servers/:id/os-volume_attachments', async (ctx) => {
    const s = visibleServer(ctx, ctx.params[0]!);
    const body = await ctx.json<{ volumeAttachment?: { volumeId?: string; device?: string } }>();
    const v = ctx.sim.state.volumes.get(body.volumeAttachment?.volumeId ?? '');
    if (!v) throw novaError(404, `Volume ${body.volumeAttachment?.volumeId} could not be found.`);
    if (v.status !== 'available') throw novaError(400, `Invalid volume: volume ${v.id} status must be available`);
    if (s.status !== 'ACTIVE') throw novaError(409, `Cannot 'attach_volume' instance ${s.id} while it is in vm_state ${s.vmState}`);
    const b = ctx.sim.beginAttach(s, v, { device: body.volumeAttachment?.device, bootIndex: null, deleteOnTermination: false });
    const out = shape.novaAttachment(s, b, ctx.mv) as Record<string, unknown>;
    delete out.bdm_uuid;
    delete out.attachment_id;
    if (shape.atLeast(ctx.mv, 2, 89)) out.id = b.volumeId;
    return ok({ volumeAttachment: out });
  }),
  route('DELETE', '/servers/:id/os-volume_attachments/:id', (ctx) => {
    const s = visibleServer(ctx, ctx.params[0]!);
    const b = s.bdms.find((x) => x.volumeId === ctx.params[1]);
    if (!b) throw novaError(404, `Volume ${ctx.params[1]} is not attached to instance ${s.id}`);
    const v = ctx.sim.state.volumes.get(b.volumeId)!;
    if (v.status !== 'in-use') throw novaError(400, `Invalid volume: volume ${v.id} status must be in-use to detach (is ${v.status})`);
    ctx.sim.beginDetach(s, b);
    return { status: 202 };
  }),
];
