// Glance v2: images (list with paging, show), download as a stream, create + upload a stream.
import type { Readable } from 'node:stream';
import type { Session } from './session.ts';

export type GlanceImage = {
  id: string;
  name: string | null;
  status: string;
  visibility: string;
  owner: string | null;
  size: number | null;
  virtual_size: number | null;
  disk_format: string | null;
  container_format: string | null;
  checksum: string | null;
  os_hash_algo: string | null;
  os_hash_value: string | null;
  min_disk: number;
  min_ram: number;
  protected: boolean;
  tags: string[];
  created_at: string;
  updated_at: string;
  file?: string;
  [property: string]: unknown;
};

export type ImageCreate = {
  name: string;
  disk_format: string;
  container_format: string;
  visibility?: 'private' | 'public' | 'shared' | 'community';
  min_disk?: number;
  min_ram?: number;
  tags?: string[];
  [property: string]: unknown;
};

export class GlanceClient {
  constructor(readonly session: Session) {}

  async listImages(opts: { pageSize?: number; signal?: AbortSignal } = {}): Promise<GlanceImage[]> {
    const out: GlanceImage[] = [];
    let marker: string | undefined;
    for (;;) {
      const page = await this.session.json<{ images: GlanceImage[]; next?: string }>('image', 'GET', '/v2/images', {
        signal: opts.signal,
        query: { limit: opts.pageSize ?? 500, marker },
      });
      out.push(...page.images);
      marker = page.next ? new URL(page.next, 'http://x').searchParams.get('marker') ?? undefined : undefined;
      if (!marker || page.images.length === 0) return out;
    }
  }

  async getImage(id: string, signal?: AbortSignal): Promise<GlanceImage> {
    return this.session.json<GlanceImage>('image', 'GET', `/v2/images/${id}`, { signal });
  }

  /** The image data; the caller must consume or destroy the stream. */
  async download(id: string, signal?: AbortSignal): Promise<{ stream: Readable; size?: number; md5?: string }> {
    const res = await this.session.request('image', 'GET', `/v2/images/${id}/file`, { expect: 'stream', headers: { Accept: 'application/octet-stream' }, signal });
    const length = res.headers.get('content-length');
    return { stream: res.stream!, size: length ? Number(length) : undefined, md5: res.headers.get('content-md5') ?? undefined };
  }

  async createImage(image: ImageCreate, signal?: AbortSignal): Promise<GlanceImage> {
    return this.session.json<GlanceImage>('image', 'POST', '/v2/images', { json: image, signal });
  }

  /** Uploads the data (not retried: a stream cannot be replayed). */
  async upload(id: string, data: Readable | Buffer, signal?: AbortSignal): Promise<void> {
    await this.session.request('image', 'PUT', `/v2/images/${id}/file`, {
      body: data, expect: 'none', signal, headers: { 'Content-Type': 'application/octet-stream' }, timeoutMs: 3_600_000,
    });
  }

  async deleteImage(id: string, signal?: AbortSignal): Promise<void> {
    await this.session.request('image', 'DELETE', `/v2/images/${id}`, { expect: 'none', signal });
  }
}
