// The simulator's starting cloud: two domains (Default and lab2, as in the samples), projects,
// users, flavors, two zones, hypervisors, an image, networks, volume types, and servers with
// volumes — some holding generated sample data (a small filesystem-like image: a header, text
// files and random blocks, with holes). `extraServers` adds many plain servers for benchmarks.
import { createHash, randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { hex32 as randomHex32, nowIso, type SimServer, type SimVolume } from './model.ts';
import type { Simulator } from './simulator.ts';

export type SeedOptions = {
  adminPassword?: string;
  lab2Password?: string;
  /** Write sample data into the demo volumes (MiB per volume, 0 = none). */
  sampleDataMiB?: number;
  /** Plain servers (one 1 GiB volume each, files created lazily), spread over the projects. */
  extraServers?: number;
  /**
   * Derive every ID from this string instead of random ones: the same cloud (and the same
   * volume files) on every start, so a restarted demo cloud syncs without duplicates.
   */
  idSeed?: string;
};

export type SeedInfo = {
  admin: { username: string; password: string; domain: string; project: string };
  lab2: { username: string; password: string; domain: string; domainId: string; project: string };
  /** A non-admin user in the demo project. */
  member: { username: string; password: string; domain: string; project: string };
  projects: Record<string, string>;
  proxyServerId: string;
  servers: Record<string, string>;
  volumes: Record<string, string>;
  imageId: string;
};

export async function seedSimulator(sim: Simulator, opts: SeedOptions = {}): Promise<SeedInfo> {
  const st = sim.state;
  const now = nowIso();
  const { uuid, hex32 } = idSource(opts.idSeed);
  const adminPassword = opts.adminPassword ?? 'sim-admin-password';
  const lab2Password = opts.lab2Password ?? 'sim-lab2-password';

  st.domains.set('default', { id: 'default', name: 'Default', description: 'The default domain', enabled: true });
  const lab2Id = hex32();
  st.domains.set(lab2Id, { id: lab2Id, name: 'lab2', description: 'lab', enabled: true });
  const projects: Record<string, string> = {};
  for (const [name, domainId, description] of [
    ['admin', 'default', 'Bootstrap project for initializing the cloud.'], ['service', 'default', ''], ['demo', 'default', ''],
    ['backup-proj-a', lab2Id, ''], ['backup-proj-b', lab2Id, ''],
  ] as const) {
    const id = hex32();
    projects[name] = id;
    st.projects.set(id, { id, name, domainId, description, enabled: true });
  }
  const adminUser = hex32();
  const lab2User = hex32();
  const memberUser = hex32();
  st.users.set(adminUser, { id: adminUser, name: 'admin', domainId: 'default', password: adminPassword });
  st.users.set(lab2User, { id: lab2User, name: 'backup-svc', domainId: lab2Id, password: lab2Password });
  st.users.set(memberUser, { id: memberUser, name: 'demo-user', domainId: 'default', password: 'sim-member-password' });
  const all = ['reader', 'member', 'admin'];
  for (const p of ['admin', 'service', 'demo']) st.assignments.push({ userId: adminUser, projectId: projects[p], roles: all });
  st.assignments.push({ userId: adminUser, domainId: 'default', roles: all });
  for (const p of ['backup-proj-a', 'backup-proj-b']) st.assignments.push({ userId: lab2User, projectId: projects[p], roles: all });
  st.assignments.push({ userId: lab2User, domainId: lab2Id, roles: all });
  st.assignments.push({ userId: memberUser, projectId: projects.demo, roles: ['reader', 'member'] });

  const tiny = uuid();
  const small = uuid();
  st.flavors.set(tiny, { id: tiny, name: 'm1.tiny', vcpus: 1, ram: 512, disk: 1, ephemeral: 0, isPublic: true });
  st.flavors.set(small, { id: small, name: 'm1.small', vcpus: 1, ram: 2048, disk: 20, ephemeral: 0, isPublic: true });
  st.zones = ['nova', 'az2'];
  st.hypervisors = [
    { id: 1, hostname: 'sim-compute-1', ip: '127.0.0.1', zone: 'nova', serviceId: 4 },
    { id: 2, hostname: 'sim-compute-2', ip: '127.0.0.2', zone: 'az2', serviceId: 5 },
  ];

  const nfs = uuid();
  const def = uuid();
  st.volumeTypes.set(nfs, { id: nfs, name: 'nfs', description: 'local-dir NFS driver', isPublic: true, extraSpecs: { volume_backend_name: 'nfs1' } });
  st.volumeTypes.set(def, { id: def, name: '__DEFAULT__', description: 'Default Volume Type', isPublic: true, extraSpecs: {} });

  const imageId = uuid();
  const imageData = sampleBytes(1 << 20, 'image');
  await writeFile(sim.files.imagePath(imageId), imageData);
  st.images.set(imageId, {
    id: imageId, name: 'sim-tiny-raw', owner: projects.admin!, visibility: 'public', status: 'active', size: imageData.length,
    diskFormat: 'raw', containerFormat: 'bare', checksum: createHash('md5').update(imageData).digest('hex'),
    sha512: createHash('sha512').update(imageData).digest('hex'), minDisk: 0, minRam: 0, createdAt: now, updatedAt: now,
    properties: { 'owner_specified.openstack.object': 'images/sim-tiny-raw' },
  });

  const nets: Record<string, string> = {};
  for (const [name, project, shared, cidr] of [
    ['shared-net', 'admin', true, '10.0.0.0/16'], ['demo-net', 'demo', false, '10.1.0.0/16'], ['lab2-net', 'backup-proj-a', false, '10.2.0.0/16'],
  ] as const) {
    const id = uuid();
    nets[name] = id;
    st.networks.set(id, { id, name, projectId: projects[project]!, shared, subnetId: uuid(), cidr, createdAt: now });
  }
  for (const [name, id] of Object.entries(projects)) {
    const g = uuid();
    st.securityGroups.set(g, { id: g, name: 'default', projectId: id, description: `Default security group (${name})` });
  }

  let instanceNo = 0;
  const addVolume = (projectId: string, name: string, size: number, typeId = nfs): SimVolume => {
    const v: SimVolume = {
      id: uuid(), name, description: null, projectId, userId: adminUser, size, status: 'available', typeId, zone: 'nova',
      bootable: false, snapshotId: null, sourceVolid: null, metadata: {}, createdAt: now, updatedAt: now, attachments: [],
    };
    st.volumes.set(v.id, v);
    return v;
  };
  const addServer = (o: { name: string; project: string; imageId: string | null; zone?: string; flavor?: string; network?: string; volumes?: { v: SimVolume; bootIndex: number | null }[] }): SimServer => {
    const zone = o.zone ?? 'nova';
    const host = st.hypervisors.find((h) => h.zone === zone)!.hostname;
    const s: SimServer = {
      id: uuid(), name: o.name, projectId: o.project, userId: adminUser, status: 'ACTIVE', vmState: 'active', taskState: null,
      flavorId: o.flavor ?? tiny, imageId: o.imageId, zone, host, keyName: null, metadata: {}, instanceName: `instance-${(++instanceNo).toString(16).padStart(8, '0')}`,
      securityGroups: ['default'], createdAt: now, updatedAt: now, launchedAt: now, reservationId: `r-${uuid().slice(0, 8)}`, bdms: [], deleted: false,
    };
    st.servers.set(s.id, s);
    if (o.network) sim.bindPort(sim.createPort({ networkId: o.network, projectId: o.project }).id, s.id);
    for (const [i, { v, bootIndex }] of (o.volumes ?? []).entries()) {
      const device = bootIndex === 0 ? '/dev/vda' : `/dev/vd${String.fromCharCode(98 + i)}`;
      const attachmentId = uuid();
      s.bdms.push({ volumeId: v.id, device, attachmentId, bdmUuid: uuid(), deleteOnTermination: false, bootIndex });
      v.status = 'in-use';
      v.bootable = bootIndex === 0;
      v.attachments.push({ attachmentId, serverId: s.id, device, attachedAt: now, hostName: host });
      st.attachments.set(attachmentId, {
        id: attachmentId, volumeId: v.id, serverId: s.id, status: 'attached', attachedAt: now,
        connectionInfo: {
          access_mode: 'rw', attachment_id: attachmentId, cacheable: false, driver_volume_type: 'nfs', encrypted: false, export: sim.files.exportName,
          format: 'raw', mount_point_base: sim.files.mountPointBase, name: sim.files.volumeName(v.id), options: null, qos_specs: null,
        },
      });
    }
    return s;
  };

  const servers: Record<string, string> = {};
  const volumes: Record<string, string> = {};
  const proxy = addServer({ name: 'sb-backup-proxy', project: projects.admin!, imageId, network: nets['shared-net'] });
  servers['sb-backup-proxy'] = proxy.id;
  const demoDisks: [server: string, project: string, zone: string, disks: [name: string, size: number, boot: boolean][], image: boolean, net: string][] = [
    ['web-1', 'demo', 'nova', [['web-1-root', 1, true], ['web-1-data', 1, false]], false, 'demo-net'],
    ['db-1', 'demo', 'az2', [['db-1-data', 1, false]], true, 'demo-net'],
    ['app-a1', 'backup-proj-a', 'nova', [['app-a1-data', 1, false]], true, 'lab2-net'],
    ['app-b1', 'backup-proj-b', 'nova', [['app-b1-data', 1, false]], true, 'shared-net'],
  ];
  const mib = opts.sampleDataMiB ?? 8;
  for (const [name, project, zone, disks, withImage, net] of demoDisks) {
    const vols = disks.map(([vname, size, boot]) => {
      const v = addVolume(projects[project]!, vname, size);
      volumes[vname] = v.id;
      return { v, bootIndex: boot ? 0 : null };
    });
    servers[name] = addServer({ name, project: projects[project]!, zone, imageId: withImage ? imageId : null, volumes: vols, network: nets[net], flavor: name === 'db-1' ? small : tiny }).id;
    for (const { v } of vols) {
      const file = await sim.files.ensureVolume(v.id, v.size * sim.gibBytes);
      if (mib > 0) await writeSampleDisk(sim, file, Math.min(v.size * sim.gibBytes, 64 << 20), mib, v.name ?? v.id);
    }
  }

  const spread = Object.values(projects);
  for (let i = 0; i < (opts.extraServers ?? 0); i++) {
    const project = spread[i % spread.length]!;
    const v = addVolume(project, `bulk-${i}-data`, 1);
    addServer({ name: `bulk-${i}`, project, imageId, zone: i % 2 ? 'az2' : 'nova', volumes: [{ v, bootIndex: null }] });
  }

  return {
    admin: { username: 'admin', password: adminPassword, domain: 'Default', project: 'admin' },
    lab2: { username: 'backup-svc', password: lab2Password, domain: 'lab2', domainId: lab2Id, project: 'backup-proj-a' },
    member: { username: 'demo-user', password: 'sim-member-password', domain: 'Default', project: 'demo' },
    projects, proxyServerId: proxy.id, servers, volumes, imageId,
  };
}

/** Random IDs, or IDs numbered from `seed` (UUID-shaped hashes of seed + a counter). */
function idSource(seed: string | undefined): { uuid: () => string; hex32: () => string } {
  if (seed === undefined) return { uuid: () => randomUUID(), hex32: randomHex32 };
  let n = 0;
  const hex32 = () => createHash('sha256').update(`${seed}/${n++}`).digest('hex').slice(0, 32);
  const uuid = () => {
    const h = hex32();
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
  };
  return { uuid, hex32 };
}

/** Deterministic pseudo-random bytes (xorshift), so sample data is the same on every run. */
export function sampleBytes(length: number, seed: string): Buffer {
  let x = createHash('sha256').update(seed).digest().readUInt32LE(0) || 1;
  const out = Buffer.alloc(length);
  for (let i = 0; i + 4 <= length; i += 4) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    out.writeUInt32LE(x, i);
  }
  return out;
}

/** A small filesystem-like image: a superblock-ish header, text "files" and random blocks, with holes between. */
async function writeSampleDisk(sim: Simulator, file: string, span: number, mib: number, label: string): Promise<void> {
  const header = Buffer.alloc(4096);
  header.write(`STRONGBOX-SIM-FS v1\nlabel=${label}\ncreated=${new Date().toISOString()}\n`);
  await sim.files.writeAt(file, 0, header);
  const text = Buffer.from(Array.from({ length: 2000 }, (_, i) => `${label}: line ${i} — the quick brown fox jumps over the lazy dog\n`).join(''));
  await sim.files.writeAt(file, 1 << 20, text);
  const blocks = Math.max(1, mib - 1);
  for (let i = 0; i < blocks; i++) {
    const offset = (2 + i * 3) * (1 << 20);
    if (offset + (1 << 20) > span) break;
    await sim.files.writeAt(file, offset, sampleBytes(1 << 20, `${label}/${i}`));
  }
}
