// An optional compute driver for the simulator: image-booted servers on one host become real
// libvirt/KVM domains laid out the way Nova's libvirt driver lays them out, so that SSH-transfer
// backups and restores meet real disks: `<instances>/_base/<sha1 of the image ID>` holds the
// Glance image's bytes as raw, `<instances>/<uuid>/disk` is a qcow2 overlay on it sized to the
// flavor's root disk, and the domain (named as the server's instance name, UUID = the server's
// ID) is a tiny q35 VM with no NIC and no OS, idling in its firmware. Stop/start/delete map to
// virsh destroy/start/undefine. Commands run on this machine: the driver plays nova-compute on
// the host it is given. Servers booted from volumes are not realised.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { SimServer } from './model.ts';

const run = promisify(execFile);

/** What the simulator asks of a compute host's hypervisor. */
export interface ComputeDriver {
  /** The hypervisor hostname whose servers this driver realises. */
  readonly host: string;
  /** Nova's instance name for a new server (instance_name_template). */
  instanceName(serverId: string): string;
  spawn(s: SimServer, image: { id: string; path: string; diskFormat: string | null }, rootDiskBytes: number): Promise<void>;
  stop(s: SimServer): Promise<void>;
  start(s: SimServer): Promise<void>;
  destroy(s: SimServer): Promise<void>;
}

export type LibvirtDriverOptions = {
  /** Nova's `instances_path`. */
  instancesDir: string;
  host?: string;
  uri?: string;
  /** Prefix of domain names; distinct from any domain this driver does not own. */
  namePrefix?: string;
};

export class LibvirtComputeDriver implements ComputeDriver {
  readonly host: string;
  readonly #uri: string;
  readonly #prefix: string;
  /** Domains this driver defined and has not undefined yet (name → instance folder). */
  readonly domains = new Map<string, string>();

  constructor(readonly o: LibvirtDriverOptions) {
    this.host = o.host ?? 'sim-compute-1';
    this.#uri = o.uri ?? 'qemu:///system';
    this.#prefix = o.namePrefix ?? 'sbsim-';
    mkdirSync(path.join(o.instancesDir, '_base'), { recursive: true });
  }

  instanceName(serverId: string): string {
    return `${this.#prefix}${serverId}`;
  }

  /** The root disk file of a server (Nova's `<instances>/<uuid>/disk`). */
  diskPath(serverId: string): string {
    return path.join(this.o.instancesDir, serverId, 'disk');
  }

  async spawn(s: SimServer, image: { id: string; path: string; diskFormat: string | null }, rootDiskBytes: number): Promise<void> {
    const base = path.join(this.o.instancesDir, '_base', createHash('sha1').update(image.id).digest('hex'));
    if (!existsSync(base)) {
      const format = image.diskFormat === 'qcow2' ? 'qcow2' : 'raw';
      await run('qemu-img', ['convert', '-q', '-f', format, '-O', 'raw', image.path, `${base}.part`]);
      renameSync(`${base}.part`, base);
    }
    const { stdout } = await run('qemu-img', ['info', '--output=json', '-f', 'raw', base]);
    const baseSize = Number((JSON.parse(stdout) as { 'virtual-size': number })['virtual-size']);
    const dir = path.join(this.o.instancesDir, s.id);
    mkdirSync(dir, { recursive: true });
    const disk = path.join(dir, 'disk');
    await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', base, disk, String(Math.max(rootDiskBytes, baseSize))]);
    const xml = path.join(dir, 'libvirt.xml');
    writeFileSync(xml, domainXml(s.instanceName, s.id, disk, existsSync('/dev/kvm') ? 'kvm' : 'qemu'));
    this.domains.set(s.instanceName, dir);
    await this.#virsh('define', xml);
    await this.#virsh('start', s.instanceName);
  }

  async stop(s: SimServer): Promise<void> {
    await this.#virsh('destroy', s.instanceName);
  }

  async start(s: SimServer): Promise<void> {
    await this.#virsh('start', s.instanceName);
  }

  async destroy(s: SimServer): Promise<void> {
    const dir = this.domains.get(s.instanceName);
    if (dir === undefined) return;
    await this.#virsh('destroy', s.instanceName).catch(() => {}); // not running
    await this.#virsh('undefine', s.instanceName, '--checkpoints-metadata', '--snapshots-metadata').catch(() => {});
    rmSync(dir, { recursive: true, force: true });
    this.domains.delete(s.instanceName);
  }

  /** Removes every domain this driver still owns (the simulator is closing). */
  async close(): Promise<void> {
    for (const [name, dir] of [...this.domains]) {
      await this.#virsh('destroy', name).catch(() => {});
      await this.#virsh('undefine', name, '--checkpoints-metadata', '--snapshots-metadata').catch(() => {});
      rmSync(dir, { recursive: true, force: true });
      this.domains.delete(name);
    }
  }

  async #virsh(...args: string[]): Promise<string> {
    return (await run('virsh', ['-q', '-c', this.#uri, ...args])).stdout;
  }
}

// As test/labs/libvirt.sh defines its domain: q35, 128 MiB, no NIC, no OS; the root disk only.
function domainXml(name: string, uuid: string, disk: string, type: string): string {
  return `<domain type='${type}'>
  <name>${name}</name>
  <uuid>${uuid}</uuid>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
  <cpu mode='custom' match='exact' check='none'><model fallback='allow'>qemu64</model></cpu>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='none'/>
      <source file='${disk}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <graphics type='vnc' listen='127.0.0.1' autoport='yes'/>
    <video><model type='none'/></video>
    <memballoon model='none'/>
  </devices>
</domain>
`;
}
