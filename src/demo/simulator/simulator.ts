// An OpenStack simulator for tests and the demo: one node:http server speaking Keystone v3,
// Nova, Cinder v3, Glance v2 and Neutron with the real response shapes, state in memory,
// volumes as real sparse files, asynchronous status changes and fault injection.
// URL layout (one port): `/identity/v3` (auth URL) and `/<region>/<interface>/<service>/…` for
// every catalog endpoint, so tests can see which endpoint a client chose.
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Faults, type FaultRule } from './faults.ts';
import { SimFiles } from './files.ts';
import { computeRoutes } from './compute.ts';
import { SimError, keystoneError, novaError, type Ctx, type Reply, type Route, type Service } from './http.ts';
import { identityRoutes } from './identity.ts';
import { imageRoutes } from './image.ts';
import type { ComputeDriver } from './libvirt-driver.ts';
import { hex32, nowIso, SimState, type SimBdm, type SimPort, type SimServer, type SimSnapshot, type SimVolume } from './model.ts';
import { networkRoutes } from './network.ts';
import type { CatalogEntry, Version } from './shapes.ts';
import { volumeRoutes } from './volume.ts';
import { logger } from '../../observability/logger.ts';

export type SimulatorOptions = {
  /** Folder for volume, snapshot and image files. */
  dataDir: string;
  host?: string;
  /** 0 = any free port. */
  port?: number;
  /** Regions in the catalog (every one is served by this process). */
  regions?: string[];
  tokenTtlSeconds?: number;
  /** Delay of asynchronous status changes (creating → available, attaching → in-use, …). */
  delayMs?: number;
  /** Bytes of one "GiB" of volume size: 1 GiB by default; tests make volumes smaller with this. */
  gibBytes?: number;
  /** Block-device mode: attachments also appear as `<byIdRoot>/virtio-<first 20 chars of the ID>`. */
  byIdRoot?: string;
  /** Realises image-booted servers of one host as real domains (libvirt-driver.ts); none: servers are records only. */
  computeDriver?: ComputeDriver;
};

export type RequestRecord = { method: string; service: Service | 'admin'; region?: string; iface?: string; path: string; headers: Record<string, string | undefined> };

const routes: Record<Service, Route[]> = { identity: identityRoutes, compute: computeRoutes, volume: volumeRoutes, image: imageRoutes, network: networkRoutes };
const maxVersion: Record<string, Version> = { compute: [2, 93], volume: [3, 70] };
const minVersion: Record<string, Version> = { compute: [2, 1], volume: [3, 0] };

export class Simulator {
  readonly state = new SimState();
  readonly faults = new Faults();
  readonly files: SimFiles;
  readonly regions: string[];
  readonly tokenTtlSeconds: number;
  readonly delayMs: number;
  readonly gibBytes: number;
  readonly requests: RequestRecord[] = [];
  tokensIssued = 0;
  url = '';
  #server?: Server;
  #timers = new Set<NodeJS.Timeout>();
  #pending = new Set<Promise<unknown>>();
  #hung = new Set<ServerResponse>();
  #endpointIds = new Map<string, string>();

  constructor(readonly opts: SimulatorOptions) {
    this.files = new SimFiles(opts.dataDir, opts.byIdRoot);
    this.regions = opts.regions ?? ['RegionOne', 'RegionTwo'];
    this.tokenTtlSeconds = opts.tokenTtlSeconds ?? 3600;
    this.delayMs = opts.delayMs ?? 100;
    this.gibBytes = opts.gibBytes ?? 1024 ** 3;
  }

  get keystoneUrl(): string {
    return `${this.url}/identity/v3`;
  }

  async listen(): Promise<this> {
    const server = createServer((req, res) => void this.#handle(req, res));
    server.keepAliveTimeout = 5000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port ?? 0, this.opts.host ?? '127.0.0.1', () => resolve());
    });
    this.#server = server;
    const addr = server.address() as AddressInfo;
    this.url = `http://${addr.address}:${addr.port}`;
    return this;
  }

  async close(): Promise<void> {
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    await Promise.allSettled([...this.#pending]);
    for (const res of this.#hung) res.destroy();
    this.#hung.clear();
    if (this.#server) {
      this.#server.closeAllConnections();
      await new Promise<void>((resolve) => this.#server!.close(() => resolve()));
    }
  }

  /** Runs a state change after the configured delay (as OpenStack's services do asynchronously). */
  later(fn: () => void | Promise<void>, delayMs = this.delayMs): void {
    const t = setTimeout(() => {
      this.#timers.delete(t);
      const p = Promise.resolve().then(fn).catch((err) => logger.error({ component: 'simulator', err }, 'simulator: async step failed'));
      this.#pending.add(p);
      void p.finally(() => this.#pending.delete(p));
    }, delayMs);
    this.#timers.add(t);
  }

  /** Resources by kind: what a leak check compares before and after. */
  counts() {
    return {
      servers: this.state.liveServers().length,
      volumes: this.state.volumes.size,
      snapshots: this.state.snapshots.size,
      attachments: this.state.attachments.size,
      ports: this.state.ports.size,
      images: this.state.images.size,
    };
  }

  addFault(rule: FaultRule): void {
    this.faults.add(rule);
  }

  // ---- the catalog -------------------------------------------------------------------------

  endpointUrl(region: string, iface: string, service: Service, projectId?: string): string {
    const base = `${this.url}/${region}/${iface}/${service}`;
    switch (service) {
      case 'identity': return `${base}/v3`;
      case 'compute': return `${base}/v2.1`;
      case 'volume': return `${base}/v3/${projectId}`;
      default: return base;
    }
  }

  catalog(projectId?: string): CatalogEntry[] {
    const services: [type: string, name: string, service: Service][] = [
      ['volumev3', 'cinderv3', 'volume'], ['block-storage', 'cinder', 'volume'], ['identity', 'keystone', 'identity'],
      ['image', 'glance', 'image'], ['network', 'neutron', 'network'], ['compute', 'nova', 'compute'],
    ];
    const id = (k: string) => {
      let v = this.#endpointIds.get(k);
      if (!v) this.#endpointIds.set(k, (v = hex32()));
      return v;
    };
    return services
      .filter(([, , service]) => service !== 'volume' || projectId)
      .map(([type, name, service]) => ({
        id: id(type),
        name,
        type,
        // Later regions first and interfaces out of order: clients must choose, not take the first.
        endpoints: [...this.regions].reverse().flatMap((region) => ['admin', 'public', 'internal'].map((iface) => ({
          id: id(`${type}/${region}/${iface}`), interface: iface, region, region_id: region,
          url: this.endpointUrl(region, iface, service, projectId),
        }))),
      }));
  }

  // ---- state changes shared by the services ------------------------------------------------

  beginAttach(s: SimServer, v: SimVolume, o: { device?: string; bootIndex: number | null; deleteOnTermination: boolean; force?: boolean }): SimBdm {
    const used = new Set(s.bdms.map((b) => b.device));
    let device = o.device;
    for (let c = 98; !device; c++) if (!used.has(`/dev/vd${String.fromCharCode(c)}`)) device = `/dev/vd${String.fromCharCode(c)}`;
    const b: SimBdm = { volumeId: v.id, device, attachmentId: randomUUID(), bdmUuid: randomUUID(), deleteOnTermination: o.deleteOnTermination, bootIndex: o.bootIndex };
    s.bdms.push(b);
    v.status = 'attaching';
    v.updatedAt = nowIso();
    this.state.attachments.set(b.attachmentId, { id: b.attachmentId, volumeId: v.id, serverId: s.id, status: 'reserved', attachedAt: null, connectionInfo: null });
    if (this.faults.neverCompleteAttach && !o.force) return b;
    this.later(async () => {
      if (!this.state.volumes.has(v.id) || !s.bdms.includes(b)) return;
      await this.files.ensureVolume(v.id, v.size * this.gibBytes);
      const at = nowIso();
      v.status = 'in-use';
      v.updatedAt = at;
      if (o.bootIndex === 0) v.bootable = true;
      v.attachments.push({ attachmentId: b.attachmentId, serverId: s.id, device: b.device, attachedAt: at, hostName: s.host });
      const a = this.state.attachments.get(b.attachmentId)!;
      a.status = 'attached';
      a.attachedAt = at;
      a.connectionInfo = {
        access_mode: 'rw', attachment_id: b.attachmentId, cacheable: false, driver_volume_type: 'nfs', encrypted: false,
        export: this.files.exportName, format: 'raw', mount_point_base: this.files.mountPointBase, name: this.files.volumeName(v.id),
        options: null, qos_specs: null,
      };
      this.files.linkById(v.id);
    });
    return b;
  }

  beginDetach(s: SimServer, b: SimBdm): void {
    const v = this.state.volumes.get(b.volumeId)!;
    v.status = 'detaching';
    this.later(() => this.#finishDetach(s, b));
  }

  #finishDetach(s: SimServer, b: SimBdm): void {
    s.bdms = s.bdms.filter((x) => x !== b);
    this.state.attachments.delete(b.attachmentId);
    this.files.unlinkById(b.volumeId);
    const v = this.state.volumes.get(b.volumeId);
    if (v) {
      v.attachments = v.attachments.filter((a) => a.attachmentId !== b.attachmentId);
      v.status = v.attachments.length ? 'in-use' : 'available';
      v.updatedAt = nowIso();
    }
  }

  /** The compute driver when it realises servers of `host`. */
  driverFor(host: string): ComputeDriver | undefined {
    return this.opts.computeDriver?.host === host ? this.opts.computeDriver : undefined;
  }

  deleteServer(s: SimServer): void {
    s.taskState = 'deleting';
    this.later(async () => {
      await this.driverFor(s.host)?.destroy(s);
      for (const b of [...s.bdms]) {
        this.#finishDetach(s, b);
        const v = this.state.volumes.get(b.volumeId);
        if (v && b.deleteOnTermination) this.deleteVolume(v);
      }
      for (const p of this.state.ports.values()) {
        if (p.deviceId !== s.id) continue;
        if (p.novaCreated) this.state.ports.delete(p.id);
        else Object.assign(p, { deviceId: '', deviceOwner: '' }); // a port the user made outlives the server
      }
      this.state.servers.delete(s.id);
    });
  }

  deleteVolume(v: SimVolume, o: { force?: boolean } = {}): void {
    v.status = 'deleting';
    if (o.force) {
      for (const s of this.state.servers.values()) s.bdms = s.bdms.filter((b) => b.volumeId !== v.id);
      for (const a of [...this.state.attachments.values()]) if (a.volumeId === v.id) this.state.attachments.delete(a.id);
      this.files.unlinkById(v.id);
      v.attachments = [];
    }
    this.later(async () => {
      await this.files.remove(this.files.volumePath(v.id));
      this.state.volumes.delete(v.id);
    });
  }

  deleteSnapshot(s: SimSnapshot): void {
    s.status = 'deleting';
    this.later(async () => {
      await this.files.remove(this.files.snapshotPath(s.id));
      this.state.snapshots.delete(s.id);
    });
  }

  createPort(o: { networkId: string; projectId: string; name?: string; securityGroups?: string[] }): SimPort {
    const n = this.state.networks.get(o.networkId)!;
    const count = [...this.state.ports.values()].filter((p) => p.networkId === n.id).length;
    const prefix = n.cidr.split('.').slice(0, 2).join('.');
    const p: SimPort = {
      id: randomUUID(), name: o.name ?? '', networkId: n.id, projectId: o.projectId, deviceId: '', deviceOwner: '',
      mac: `fa:16:3e:${randomBytes(3).toString('hex').match(/../g)!.join(':')}`,
      ip: `${prefix}.${Math.floor((count + 10) / 250)}.${((count + 10) % 250) + 2}`,
      securityGroups: o.securityGroups ?? [], createdAt: nowIso(),
    };
    this.state.ports.set(p.id, p);
    return p;
  }

  bindPort(portId: string, serverId: string): void {
    const p = this.state.ports.get(portId);
    if (!p) throw novaError(400, `Port ${portId} not found`);
    p.deviceId = serverId;
    p.deviceOwner = 'compute:nova';
  }

  // ---- HTTP --------------------------------------------------------------------------------

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestId = `req-${randomUUID()}`;
    let service: Service | undefined;
    try {
      const url = new URL(req.url ?? '/', 'http://sim');
      if (url.pathname.startsWith('/__sim/')) return this.#send(res, await this.#admin(req, url), requestId, undefined);
      const parsed = this.#parsePath(url.pathname);
      if (!parsed) throw new SimError(404, { error: { code: 404, message: `no such endpoint: ${url.pathname}` } });
      service = parsed.service;
      this.requests.push({
        method: req.method ?? 'GET', service, region: parsed.region, iface: parsed.iface, path: url.pathname + url.search,
        headers: { 'openstack-api-version': req.headers['openstack-api-version'] as string | undefined, 'x-openstack-nova-api-version': req.headers['x-openstack-nova-api-version'] as string | undefined },
      });
      const fault = this.faults.take(req.method ?? 'GET', url.pathname);
      if (fault?.hang) {
        this.#hung.add(res);
        req.resume();
        return;
      }
      if (fault?.dropAfterBytes !== undefined) {
        let seen = 0;
        const limit = fault.dropAfterBytes;
        req.on('data', (c: Buffer) => {
          seen += c.length;
          if (seen > limit) req.socket.destroy();
        });
      }
      if (fault?.status) throw service === 'identity' ? keystoneError(fault.status, 'Injected', 'injected fault') : novaError(fault.status, 'injected fault');
      const mv = this.#microversion(req, service);
      const token = this.#authenticate(req, service, parsed.rest, req.method ?? 'GET');
      if (service === 'volume' && parsed.projectId !== token?.projectId) throw novaError(400, 'Malformed request url');
      for (const [method, pattern, handler] of routes[service]) {
        if (method !== req.method) continue;
        const m = pattern.exec(parsed.rest);
        if (!m) continue;
        let bodyRead: Promise<unknown> | undefined;
        const ctx: Ctx = {
          sim: this, req, method, service, path: parsed.rest, query: url.searchParams, params: m.slice(1), token, mv,
          serviceUrl: parsed.serviceUrl, rootUrl: parsed.rootUrl, urlProjectId: parsed.projectId,
          json: <T>() => (bodyRead ??= readJson(req)) as Promise<T>,
        };
        return this.#send(res, await handler(ctx), requestId, service, mv, fault?.stallAfterBytes);
      }
      throw novaError(404, 'The resource could not be found.');
    } catch (err) {
      if (err instanceof SimError) return this.#send(res, { status: err.status, json: typeof err.body === 'string' ? undefined : err.body, text: typeof err.body === 'string' ? err.body : undefined }, requestId, service);
      logger.error({ component: 'simulator', err }, 'simulator: unexpected error');
      return this.#send(res, { status: 500, json: { computeFault: { code: 500, message: 'internal simulator error' } } }, requestId, service);
    }
  }

  #parsePath(p: string): { service: Service; region?: string; iface?: string; rest: string; serviceUrl: string; rootUrl: string; projectId?: string } | undefined {
    let m = /^\/identity\/v3(\/.*)?$/.exec(p);
    if (m) return { service: 'identity', rest: m[1] ?? '/', serviceUrl: `${this.url}/identity/v3`, rootUrl: `${this.url}/identity` };
    m = /^\/([^/]+)\/(public|internal|admin)\/(identity|compute|volume|image|network)(\/.*)?$/.exec(p);
    if (!m || !this.regions.includes(m[1]!)) return undefined;
    const [, region, iface, service, tail = '/'] = m as unknown as [string, string, string, Service, string];
    const base = `${this.url}/${region}/${iface}/${service}`;
    const prefix = { identity: /^\/v3(\/.*)?$/, compute: /^\/v2\.1(\/.*)?$/, volume: /^\/v3\/([^/]+)(\/.*)?$/, image: /^(\/.*)$/, network: /^(\/.*)$/ }[service];
    const pm = prefix.exec(tail);
    if (!pm) return undefined;
    if (service === 'volume') return { service, region, iface, rest: pm[2] ?? '/', projectId: pm[1], serviceUrl: `${base}/v3/${pm[1]}`, rootUrl: `${base}/${pm[1]}` };
    if (service === 'image' || service === 'network') return { service, region, iface, rest: pm[1]!, serviceUrl: base, rootUrl: base };
    return { service, region, iface, rest: pm[1] ?? '/', serviceUrl: `${base}${service === 'compute' ? '/v2.1' : '/v3'}`, rootUrl: base };
  }

  #microversion(req: IncomingMessage, service: Service): Version {
    if (service !== 'compute' && service !== 'volume') return [0, 0];
    const key = service === 'compute' ? 'compute' : 'volume';
    const header = String(req.headers['openstack-api-version'] ?? '');
    let asked = new RegExp(`(?:^|,)\\s*${key}\\s+([0-9.]+|latest)`).exec(header)?.[1];
    if (!asked && service === 'compute') asked = req.headers['x-openstack-nova-api-version'] as string | undefined;
    if (!asked) return minVersion[key]!;
    if (asked === 'latest') return maxVersion[key]!;
    const [maj, min] = asked.split('.').map(Number) as Version;
    const max = maxVersion[key]!;
    const low = minVersion[key]!;
    if (maj !== max[0] || min > max[1] || min < low[1]) {
      throw novaError(406, `Version ${asked} is not supported by the API. Minimum is ${low.join('.')} and maximum is ${max.join('.')}.`);
    }
    return [maj, min];
  }

  #authenticate(req: IncomingMessage, service: Service, rest: string, method: string) {
    if (service === 'identity' && method === 'POST' && rest === '/auth/tokens') return undefined;
    const value = req.headers['x-auth-token'];
    const token = typeof value === 'string' ? this.state.tokens.get(value) : undefined;
    if (!token || new Date(token.expiresAt).getTime() <= Date.now()) {
      throw keystoneError(401, 'Unauthorized', 'The request you have made requires authentication.');
    }
    return token;
  }

  async #admin(req: IncomingMessage, url: URL): Promise<Reply> {
    const path = url.pathname;
    if (req.method === 'POST' && path === '/__sim/faults') {
      this.faults.add((await readJson(req)) as FaultRule);
      return { status: 201, json: { faults: this.faults.rules.length } };
    }
    if (req.method === 'DELETE' && path === '/__sim/faults') {
      this.faults.clear();
      return { status: 204 };
    }
    if (req.method === 'POST' && path === '/__sim/attach-never-completes') {
      this.faults.neverCompleteAttach = Boolean(((await readJson(req)) as { enabled?: boolean }).enabled);
      return { status: 200, json: { enabled: this.faults.neverCompleteAttach } };
    }
    if (req.method === 'GET' && path === '/__sim/counts') return { status: 200, json: this.counts() };
    throw new SimError(404, { error: { code: 404, message: 'unknown admin call' } });
  }

  #send(res: ServerResponse, reply: Reply, requestId: string, service?: Service, mv?: Version, stallAfterBytes?: number): void {
    const headers: Record<string, string> = { 'x-openstack-request-id': requestId, ...reply.headers };
    if (service === 'compute') {
      headers['x-compute-request-id'] = requestId;
      if (mv) Object.assign(headers, { 'OpenStack-API-Version': `compute ${mv.join('.')}`, 'X-OpenStack-Nova-API-Version': mv.join('.'), Vary: 'OpenStack-API-Version, X-OpenStack-Nova-API-Version' });
    }
    if (service === 'volume' && mv) Object.assign(headers, { 'OpenStack-API-Version': `volume ${mv.join('.')}`, Vary: 'OpenStack-API-Version' });
    if (reply.stream) {
      res.writeHead(reply.status, headers);
      if (stallAfterBytes === undefined) {
        reply.stream.pipe(res);
        return;
      }
      // A stalled download: the first bytes, then silence on an open connection.
      this.#hung.add(res);
      let sent = 0;
      reply.stream.on('data', (c: Buffer) => {
        if (sent < stallAfterBytes) res.write(c.subarray(0, stallAfterBytes - sent));
        sent += c.length;
        if (sent >= stallAfterBytes) reply.stream!.destroy();
      });
      return;
    }
    let body = '';
    if (reply.json !== undefined) {
      body = JSON.stringify(reply.json);
      headers['Content-Type'] = 'application/json';
    } else if (reply.text !== undefined) {
      body = reply.text;
      headers['Content-Type'] = 'text/html; charset=UTF-8';
    }
    headers['Content-Length'] = String(Buffer.byteLength(body));
    res.writeHead(reply.status, headers);
    res.end(body);
  }
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text) return {};
  try {
    return JSON.parse(text);
  } catch {
    throw novaError(400, 'Malformed request body');
  }
}
