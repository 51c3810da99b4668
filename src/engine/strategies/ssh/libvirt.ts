// What we ask libvirt and qemu-img on a hypervisor: the domain of a Nova instance, its disks,
// their QCOW2 chains and the extents a chain or a single layer holds.
import { StrategyError, type Extent } from '../disk-source.ts';
import type { HypervisorConnection } from './connection.ts';

export interface DomainDisk {
  /** Target device, e.g. "vda". */
  target: string;
  /** Active (top) image of the disk. */
  source: string;
}

/** A disk of the domain that QEMU reads from Ceph (`<source protocol='rbd' name='pool/image'>`). */
export interface RbdDomainDisk {
  target: string;
  pool: string;
  image: string;
}

export interface ChainLayer {
  filename: string;
  format: string;
  virtualSize: number;
  backingFilename: string | null;
}

export interface MapEntry extends Extent {
  depth: number;
  present: boolean;
  zero: boolean;
  data: boolean;
}

export class Libvirt {
  constructor(
    private conn: HypervisorConnection,
    private uri = 'qemu:///system',
  ) {}

  virsh(...args: string[]): string[] {
    return ['virsh', '-q', '-c', this.uri, ...args];
  }

  /** The libvirt domain name of a Nova instance (Nova sets the domain UUID to the instance UUID). */
  async domainName(novaUuid: string): Promise<string> {
    const r = await this.conn.ask(this.virsh('domname', novaUuid));
    if (r.code !== 0) {
      throw new StrategyError('DOMAIN_NOT_FOUND', `no libvirt domain with UUID ${novaUuid} on ${this.conn.credentials.host}: ${r.stderr.trim()}`);
    }
    return r.stdout.toString().trim();
  }

  /** The domain `name` (Nova's instance_name), checked to be the instance `novaUuid`. */
  async checkDomain(name: string, novaUuid: string): Promise<string> {
    const r = await this.conn.ask(this.virsh('domuuid', name));
    if (r.code !== 0) {
      throw new StrategyError('DOMAIN_NOT_FOUND', `no libvirt domain ${name} on ${this.conn.credentials.host}: ${r.stderr.trim()}`);
    }
    const uuid = r.stdout.toString().trim();
    if (uuid.toLowerCase() !== novaUuid.toLowerCase()) {
      throw new StrategyError('DOMAIN_NOT_FOUND', `libvirt domain ${name} on ${this.conn.credentials.host} is ${uuid}, not instance ${novaUuid}`);
    }
    return name;
  }

  /** File-backed disks (Nova root and ephemeral disks); cdroms, RBD and block devices are skipped. */
  async disks(domain: string): Promise<DomainDisk[]> {
    const out = await this.conn.query(this.virsh('domblklist', domain, '--details'), 'DOMAIN_QUERY_FAILED');
    const disks: DomainDisk[] = [];
    for (const line of out.split('\n')) {
      const [type, device, target, ...rest] = line.trim().split(/\s+/);
      const source = rest.join(' ');
      if (type === 'file' && device === 'disk' && source && source !== '-') disks.push({ target, source });
    }
    return disks;
  }

  /** RBD-backed disks (Nova's images_type=rbd, Cinder RBD volumes), from the live domain XML. */
  async rbdDisks(domain: string): Promise<RbdDomainDisk[]> {
    const xml = await this.conn.query(this.virsh('dumpxml', domain), 'DOMAIN_QUERY_FAILED');
    return parseRbdDisks(xml);
  }

  async chain(image: string): Promise<ChainLayer[]> {
    const out = await this.conn.query(['qemu-img', 'info', '--backing-chain', '--output=json', '-U', image], 'CHAIN_QUERY_FAILED');
    const infos = JSON.parse(out) as Array<Record<string, unknown>>;
    return infos.map((i) => ({
      filename: String(i['filename']),
      format: String(i['format']),
      virtualSize: Number(i['virtual-size']),
      backingFilename: (i['full-backing-filename'] as string | undefined) ?? (i['backing-filename'] as string | undefined) ?? null,
    }));
  }

  /** Map of the whole chain under `image` (flat disk view). */
  mapChain(image: string): Promise<MapEntry[]> {
    return this.map(image);
  }

  /** Map of what one qcow2 layer holds itself: the backing is cut off. */
  mapLayer(image: string): Promise<MapEntry[]> {
    const spec = { driver: 'qcow2', backing: null, file: { driver: 'file', filename: image } };
    return this.map(`json:${JSON.stringify(spec)}`);
  }

  private async map(spec: string): Promise<MapEntry[]> {
    const out = await this.conn.query(['qemu-img', 'map', '--output=json', '-U', spec], 'MAP_FAILED');
    return (JSON.parse(out) as Array<Record<string, unknown>>).map((e) => ({
      offset: Number(e['start']),
      length: Number(e['length']),
      depth: Number(e['depth']),
      present: e['present'] !== false,
      zero: e['zero'] === true,
      data: e['data'] === true,
    }));
  }

  /** True when a QEMU guest agent answers (then snapshots are quiesced). */
  async guestAgentAnswers(domain: string): Promise<boolean> {
    const r = await this.conn.exec(this.virsh('qemu-agent-command', domain, '{"execute":"guest-ping"}', '--timeout', '2'));
    return r.code === 0;
  }

  /** `virsh domstate`: "running", "paused", "shut off", … */
  async domainState(domain: string): Promise<string> {
    return (await this.conn.query(this.virsh('domstate', domain), 'DOMAIN_QUERY_FAILED')).trim();
  }

  /** Guest filesystems frozen by the guest agent (until thawFilesystems). */
  async freezeFilesystems(domain: string): Promise<void> {
    const r = await this.conn.exec(this.virsh('domfsfreeze', domain));
    if (r.code !== 0) throw new StrategyError('FREEZE_FAILED', `freezing the filesystems of ${domain} failed: ${r.stderr.trim().slice(0, 500)}`);
  }

  async thawFilesystems(domain: string): Promise<void> {
    // Thawing filesystems that are not frozen is no error (the agent answers 0 thawed).
    await this.change(['domfsthaw', domain], 'THAW_FAILED', async () => false);
  }

  /** `virsh suspend`: the vCPUs stop, the guest issues no I/O until resumed. */
  async pause(domain: string): Promise<void> {
    await this.change(['suspend', domain], 'PAUSE_FAILED', async () => (await this.domainState(domain)) === 'paused');
  }

  async resume(domain: string): Promise<void> {
    await this.change(['resume', domain], 'RESUME_FAILED', async () => (await this.domainState(domain)) === 'running');
  }

  /**
   * A state change, asked up to three times: under load an exec channel has closed without exit
   * status although the command ran, so a failure counts as done when `reached()` says so.
   */
  private async change(args: string[], errorCode: string, reached: () => Promise<boolean>): Promise<void> {
    let last = '';
    for (let attempt = 1; attempt <= 3; attempt++) {
      const r = await this.conn.exec(this.virsh(...args));
      if (r.code === 0 || (await reached().catch(() => false))) return;
      last = `exited ${r.code}: ${r.stderr.trim().slice(0, 500)}`;
    }
    throw new StrategyError(errorCode, `virsh ${args.join(' ')} on ${this.conn.credentials.host} ${last}`);
  }
}

/** Merge adjacent extents of the same kind (qemu-img map splits at cluster/layer boundaries). */
export function coalesce<T extends Extent>(entries: T[], same: (a: T, b: T) => boolean = () => true): T[] {
  const out: T[] = [];
  for (const e of entries) {
    const last = out[out.length - 1];
    if (last && last.offset + last.length === e.offset && same(last, e)) last.length += e.length;
    else out.push({ ...e });
  }
  return out;
}

/** The `<disk type='network' device='disk'>` elements with an rbd source of a domain XML. */
export function parseRbdDisks(xml: string): RbdDomainDisk[] {
  const out: RbdDomainDisk[] = [];
  for (const [, attrs, body] of xml.matchAll(/<disk\b([^>]*)>([\s\S]*?)<\/disk>/g)) {
    if (!/type=['"]network['"]/.test(attrs!) || !/device=['"]disk['"]/.test(attrs!)) continue;
    const source = /<source\b[^>]*>|<source\b[^>]*\/>/.exec(body!)?.[0] ?? '';
    if (!/protocol=['"]rbd['"]/.test(source)) continue;
    const name = /name=['"]([^'"]+)['"]/.exec(source)?.[1];
    const target = /<target\b[^>]*dev=['"]([^'"]+)['"]/.exec(body!)?.[1];
    const slash = name?.indexOf('/') ?? -1;
    if (!name || !target || slash <= 0) continue;
    out.push({ target, pool: name.slice(0, slash), image: name.slice(slash + 1) });
  }
  return out;
}
