// Glance v2: images (list with marker paging, show, create, upload, download, delete).
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { glanceError, ok, route, type Ctx, type Route } from './http.ts';
import { nowIso, type SimImage } from './model.ts';
import * as shape from './shapes.ts';

function visibleImage(ctx: Ctx, id: string): SimImage {
  const i = ctx.sim.state.images.get(id);
  const t = ctx.token!;
  if (!i || (i.visibility !== 'public' && i.owner !== t.projectId && !t.roles.includes('admin'))) throw glanceError(404, `No image found with ID ${id}`);
  return i;
}

export const imageRoutes: Route[] = [
  route('GET', '/v2/images', (ctx) => {
    const t = ctx.token!;
    let images = [...ctx.sim.state.images.values()].filter((i) => i.visibility === 'public' || i.owner === t.projectId || t.roles.includes('admin'));
    const marker = ctx.query.get('marker');
    if (marker) {
      const idx = images.findIndex((i) => i.id === marker);
      if (idx < 0) throw glanceError(400, `marker not found`);
      images = images.slice(idx + 1);
    }
    const limit = Math.min(Number(ctx.query.get('limit') ?? 25), 1000);
    const page = images.slice(0, limit);
    const body: Record<string, unknown> = { first: '/v2/images', images: page.map(shape.image), schema: '/v2/schemas/images' };
    if (images.length > limit) body.next = `/v2/images?marker=${page[page.length - 1]!.id}&limit=${limit}`;
    return ok(body);
  }),
  route('GET', '/v2/images/:id', (ctx) => ok(shape.image(visibleImage(ctx, ctx.params[0]!)))),
  route('POST', '/v2/images', async (ctx) => {
    const b = await ctx.json<Record<string, unknown>>();
    const { name, disk_format, container_format, visibility, min_disk, min_ram, id: _id, tags: _tags, ...properties } = b;
    const now = nowIso();
    const i: SimImage = {
      id: randomUUID(), name: (name as string) ?? null, owner: ctx.token!.projectId!, visibility: (visibility as string) ?? 'shared', status: 'queued',
      size: null, diskFormat: (disk_format as string) ?? null, containerFormat: (container_format as string) ?? null, checksum: null, sha512: null,
      minDisk: Number(min_disk ?? 0), minRam: Number(min_ram ?? 0), createdAt: now, updatedAt: now, properties,
    };
    ctx.sim.state.images.set(i.id, i);
    return ok(shape.image(i), 201);
  }),
  route('PUT', '/v2/images/:id/file', async (ctx) => {
    const i = visibleImage(ctx, ctx.params[0]!);
    if (i.status !== 'queued') throw glanceError(409, `Image status transition from ${i.status} to saving is not allowed`);
    i.status = 'saving';
    const md5 = createHash('md5');
    const sha = createHash('sha512');
    const tap = new Transform({ transform(chunk, _e, cb) { md5.update(chunk); sha.update(chunk); cb(null, chunk); } });
    try {
      await pipeline(ctx.req, tap, createWriteStream(ctx.sim.files.imagePath(i.id)));
    } catch (e) {
      // As Glance does: a failed upload puts the image back to `queued` and drops the partial data.
      i.status = 'queued';
      await ctx.sim.files.remove(ctx.sim.files.imagePath(i.id));
      throw glanceError(400, `upload of image ${i.id} broke off: ${(e as Error).message}`);
    }
    i.size = (await stat(ctx.sim.files.imagePath(i.id))).size;
    i.checksum = md5.digest('hex');
    i.sha512 = sha.digest('hex');
    i.status = 'active';
    i.updatedAt = nowIso();
    return { status: 204 };
  }),
  route('GET', '/v2/images/:id/file', (ctx) => {
    const i = visibleImage(ctx, ctx.params[0]!);
    if (i.status !== 'active') throw glanceError(204, '');
    return {
      status: 200,
      stream: createReadStream(ctx.sim.files.imagePath(i.id)),
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(i.size ?? 0), 'Content-MD5': i.checksum ?? '' },
    };
  }),
  route('DELETE', '/v2/images/:id', async (ctx) => {
    const i = visibleImage(ctx, ctx.params[0]!);
    ctx.sim.state.images.delete(i.id);
    await ctx.sim.files.remove(ctx.sim.files.imagePath(i.id));
    return { status: 204 };
  }),
];
