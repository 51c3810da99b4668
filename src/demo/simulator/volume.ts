// Cinder v3: volumes (detail with all_tenants and paging, show, create — blank or from a
// snapshot or volume —, delete, force-delete/reset-status), types with extra specs, snapshots
// (force for in-use), attachments (3.27), availability zones.
import { randomUUID } from 'node:crypto';
import { novaError, ok, route, type Ctx, type Route } from './http.ts';
import { nowIso, type SimSnapshot, type SimVolume } from './model.ts';
import * as shape from './shapes.ts';

const MAX_LIMIT = 1000;
const isAdmin = (ctx: Ctx) => ctx.token!.roles.includes('admin');

function visibleVolume(ctx: Ctx, id: string): SimVolume {
  const v = ctx.sim.state.volumes.get(id);
  if (!v || (!isAdmin(ctx) && v.projectId !== ctx.token!.projectId)) throw novaError(404, `Volume ${id} could not be found.`);
  return v;
}
function visibleSnapshot(ctx: Ctx, id: string): SimSnapshot {
  const s = ctx.sim.state.snapshots.get(id);
  if (!s || (!isAdmin(ctx) && s.projectId !== ctx.token!.projectId)) throw novaError(404, `Snapshot ${id} could not be found.`);
  return s;
}
function allTenants(ctx: Ctx): boolean {
  return ['1', 'true', 'True'].includes(ctx.query.get('all_tenants') ?? '') && isAdmin(ctx);
}

function listVolumes(ctx: Ctx, detail: boolean) {
  const all = allTenants(ctx);
  const projectFilter = ctx.query.get('project_id');
  let vols = [...ctx.sim.state.volumes.values()].filter((v) => (all ? !projectFilter || v.projectId === projectFilter : v.projectId === ctx.token!.projectId));
  const marker = ctx.query.get('marker');
  if (marker) {
    const i = vols.findIndex((v) => v.id === marker);
    if (i < 0) throw novaError(404, `Marker ${marker} could not be found.`);
    vols = vols.slice(i + 1);
  }
  const limit = Math.min(Number(ctx.query.get('limit') ?? MAX_LIMIT), MAX_LIMIT);
  const page = vols.slice(0, limit);
  const body: Record<string, unknown> = {
    volumes: page.map((v) => (detail ? shape.volume(ctx.sim.state, v, ctx.mv, ctx.serviceUrl, ctx.rootUrl) : { id: v.id, links: [], name: v.name })),
  };
  if (page.length === limit && vols.length > limit) {
    const next = new URLSearchParams(ctx.query);
    next.set('limit', String(limit));
    next.set('marker', page[page.length - 1]!.id);
    body.volumes_links = [{ href: `${ctx.serviceUrl}/volumes${detail ? '/detail' : ''}?${next}`, rel: 'next' }];
  }
  return ok(body);
}

type VolumeBody = { volume?: { size?: number; name?: string; description?: string; snapshot_id?: string; source_volid?: string; volume_type?: string; availability_zone?: string; metadata?: Record<string, string> } };

async function createVolume(ctx: Ctx) {
  const { sim } = ctx;
  const { state } = sim;
  const b = (await ctx.json<VolumeBody>()).volume;
  if (!b) throw novaError(400, 'Missing required element \'volume\' in request body.');
  const snap = b.snapshot_id ? visibleSnapshot(ctx, b.snapshot_id) : undefined;
  if (snap && snap.status !== 'available') throw novaError(400, `Invalid snapshot: Originating snapshot status must be one of 'available' values`);
  const source = b.source_volid ? visibleVolume(ctx, b.source_volid) : undefined;
  const size = b.size ?? snap?.size ?? source?.size;
  if (!size || size < 1) throw novaError(400, 'Invalid input received: size must be an integer greater than 0');
  if (snap && size < snap.size) throw novaError(400, 'Invalid input received: Volume size cannot be lesser than the snapshot size');
  const type = b.volume_type ? state.volumeTypes.get(b.volume_type) ?? state.volumeTypeByName(b.volume_type) : undefined;
  if (b.volume_type && !type) throw novaError(404, `Volume type ${b.volume_type} could not be found.`);
  const zone = b.availability_zone ?? state.zones[0]!;
  if (!state.zones.includes(zone)) throw novaError(400, `Invalid input received: Availability zone '${zone}' is invalid.`);
  const v: SimVolume = {
    id: randomUUID(), name: b.name ?? null, description: b.description ?? null, projectId: ctx.token!.projectId!, userId: ctx.token!.userId,
    size, status: 'creating', typeId: (type ?? (snap || source ? state.volumeTypes.get(state.volumes.get(snap?.volumeId ?? source!.id)?.typeId ?? '') : undefined) ?? state.defaultVolumeType()).id,
    zone, bootable: false, snapshotId: snap?.id ?? null, sourceVolid: source?.id ?? null, metadata: b.metadata ?? {},
    createdAt: nowIso(), updatedAt: null, attachments: [],
  };
  state.volumes.set(v.id, v);
  sim.later(async () => {
    if (snap) await sim.files.sparseCopy(sim.files.snapshotPath(snap.id), sim.files.volumePath(v.id), size * sim.gibBytes);
    else if (source) await sim.files.sparseCopy(await sim.files.ensureVolume(source.id, source.size * sim.gibBytes), sim.files.volumePath(v.id), size * sim.gibBytes);
    else await sim.files.ensureVolume(v.id, size * sim.gibBytes);
    v.status = 'available';
    v.updatedAt = nowIso();
  });
  return ok({ volume: shape.volume(state, v, ctx.mv, ctx.serviceUrl, ctx.rootUrl) }, 202);
}

function deleteVolume(ctx: Ctx) {
  const v = visibleVolume(ctx, ctx.params[0]!);
  if (!['available', 'error', 'error_restoring', 'error_extending', 'error_managing'].includes(v.status)) {
    throw novaError(400, `Invalid volume: Volume status must be available or error or error_restoring or error_extending or error_managing and must not be migrating, attached, belong to a group, have snapshots or be disassociated from snapshots after volume transfer.`);
  }
  if ([...ctx.sim.state.snapshots.values()].some((s) => s.volumeId === v.id)) {
    throw novaError(400, `Invalid volume: Volume ${v.id} still has 1 dependent snapshots.`);
  }
  ctx.sim.deleteVolume(v);
  return { status: 202 };
}

async function volumeAction(ctx: Ctx) {
  const v = visibleVolume(ctx, ctx.params[0]!);
  const body = await ctx.json<Record<string, { status?: string } | null>>();
  if (!isAdmin(ctx)) throw novaError(403, 'Policy doesn\'t allow volume_extension:volume_admin_actions to be performed.');
  if ('os-force_delete' in body) {
    ctx.sim.deleteVolume(v, { force: true });
    return { status: 202 };
  }
  if ('os-reset_status' in body) {
    v.status = body['os-reset_status']?.status ?? 'available';
    return { status: 202 };
  }
  throw novaError(400, `There is no such action: ${Object.keys(body)[0]}`);
}

async function createSnapshot(ctx: Ctx) {
  const { sim } = ctx;
  const b = (await ctx.json<{ snapshot?: { volume_id?: string; force?: boolean | string; name?: string; description?: string; metadata?: Record<string, string> } }>()).snapshot;
  const v = visibleVolume(ctx, b?.volume_id ?? '');
  const force = b?.force === true || b?.force === 'true' || b?.force === 'True';
  // From 3.66 an in-use volume needs no force flag, and `force: false` is refused (as in Cinder).
  const noForceNeeded = shape.atLeast(ctx.mv, 3, 66);
  if (noForceNeeded && b?.force !== undefined && !force) throw novaError(400, 'Invalid input received: force flag is invalid for this microversion; it must be true or omitted.');
  if (v.status !== 'available' && !(v.status === 'in-use' && (force || noForceNeeded))) {
    throw novaError(400, `Invalid volume: Volume ${v.id} status must be available, but current status is: ${v.status}.`);
  }
  const s: SimSnapshot = {
    id: randomUUID(), name: b?.name ?? null, description: b?.description ?? null, volumeId: v.id, projectId: v.projectId,
    size: v.size, status: 'creating', metadata: b?.metadata ?? {}, createdAt: nowIso(), updatedAt: null,
  };
  sim.state.snapshots.set(s.id, s);
  // The bytes are taken now (point in time); the status turns available a little later.
  const copied = sim.files.ensureVolume(v.id, v.size * sim.gibBytes).then((p) => sim.files.sparseCopy(p, sim.files.snapshotPath(s.id)));
  sim.later(async () => {
    await copied;
    s.status = 'available';
    s.updatedAt = nowIso();
  });
  await copied;
  return ok({ snapshot: shape.snapshot(s) }, 202);
}

function requireAttachmentsApi(ctx: Ctx) {
  if (!shape.atLeast(ctx.mv, 3, 27)) throw novaError(404, 'The resource could not be found.');
}

export const volumeRoutes: Route[] = [
  route('GET', '/volumes/detail', (ctx) => listVolumes(ctx, true)),
  route('GET', '/volumes', (ctx) => listVolumes(ctx, false)),
  route('POST', '/volumes', createVolume),
  route('GET', '/volumes/:id', (ctx) => ok({ volume: shape.volume(ctx.sim.state, visibleVolume(ctx, ctx.params[0]!), ctx.mv, ctx.serviceUrl, ctx.rootUrl) })),
  route('DELETE', '/volumes/:id', deleteVolume),
  route('POST', '/volumes/:id/action', volumeAction),
  route('GET', '/types', (ctx) => ok({ volume_types: [...ctx.sim.state.volumeTypes.values()].map(shape.volumeType) })),
  route('GET', '/types/:id', (ctx) => {
    const t = ctx.sim.state.volumeTypes.get(ctx.params[0]!);
    if (!t) throw novaError(404, `Volume type ${ctx.params[0]} could not be found.`);
    return ok({ volume_type: shape.volumeType(t) });
  }),
  route('GET', '/types/:id/extra_specs', (ctx) => {
    const t = ctx.sim.state.volumeTypes.get(ctx.params[0]!);
    if (!t) throw novaError(404, `Volume type ${ctx.params[0]} could not be found.`);
    return ok({ extra_specs: t.extraSpecs });
  }),
  route('POST', '/snapshots', createSnapshot),
  route('GET', '/snapshots/detail', (ctx) => {
    const all = allTenants(ctx);
    return ok({ snapshots: [...ctx.sim.state.snapshots.values()].filter((s) => all || s.projectId === ctx.token!.projectId).map(shape.snapshot) });
  }),
  route('GET', '/snapshots/:id', (ctx) => ok({ snapshot: shape.snapshot(visibleSnapshot(ctx, ctx.params[0]!)) })),
  route('PUT', '/snapshots/:id/metadata', async (ctx) => {
    const s = visibleSnapshot(ctx, ctx.params[0]!);
    const { metadata } = await ctx.json<{ metadata?: Record<string, string> }>();
    if (!metadata || typeof metadata !== 'object') throw novaError(400, 'Malformed request body');
    s.metadata = { ...metadata };
    s.updatedAt = nowIso();
    return ok({ metadata: s.metadata });
  }),
  route('DELETE', '/snapshots/:id', (ctx) => {
    const s = visibleSnapshot(ctx, ctx.params[0]!);
    if (s.status === 'creating' || s.status === 'deleting') throw novaError(400, `Invalid snapshot: Snapshot status must be available or error and must not be part of a group.`);
    ctx.sim.deleteSnapshot(s);
    return { status: 202 };
  }),
  route('GET', '/attachments/detail', (ctx) => {
    requireAttachmentsApi(ctx);
    const volumeId = ctx.query.get('volume_id');
    const instanceId = ctx.query.get('instance_id');
    const list = [...ctx.sim.state.attachments.values()].filter((a) => (!volumeId || a.volumeId === volumeId) && (!instanceId || a.serverId === instanceId)
      && (isAdmin(ctx) || ctx.sim.state.volumes.get(a.volumeId)?.projectId === ctx.token!.projectId));
    return ok({ attachments: list.map(shape.cinderAttachment) });
  }),
  route('GET', '/attachments/:id', (ctx) => {
    requireAttachmentsApi(ctx);
    const a = ctx.sim.state.attachments.get(ctx.params[0]!);
    if (!a) throw novaError(404, `VolumeAttachment ${ctx.params[0]} could not be found.`);
    return ok({ attachment: shape.cinderAttachment(a) });
  }),
  route('GET', '/os-availability-zone', (ctx) => ok({ availabilityZoneInfo: ctx.sim.state.zones.map((z) => ({ zoneName: z, zoneState: { available: true } })) })),
];
