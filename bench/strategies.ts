// bench:strategies — incremental backup of the bench day1→day2 change through
//   1. a QCOW2 layer on a live libvirt/KVM domain, read over SSH (the SSH transfer strategy), and
//   2. a Ceph RBD export-diff,
// reporting time and bytes read against the size of the change; then SSH vs netcat throughput on
// a full read, through the overlay design and through the libvirt checkpoint (backup job) path. Needs the labs (sshd, libvirt, ceph: started here through test/labs/*.sh).
//
//   npm run bench:strategies            (SIZE_MIB=512 by default; BENCH_DIR to keep the images)
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, openSync, readFileSync, readSync, closeSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { CephClient } from '../src/engine/strategies/rbd/ceph-client.ts';
import { encodeExportDiff, type DiffRecord } from '../src/engine/strategies/rbd/export-diff.ts';
import { RbdDiskSource } from '../src/engine/strategies/rbd/rbd-source.ts';
import { SshInstanceBackup, type SshBackupOptions } from '../src/engine/strategies/ssh/instance-backup.ts';
import { CheckpointInstanceBackup } from '../src/engine/strategies/ssh/checkpoint-backup.ts';
import { availableParallelism, loadavg } from 'node:os';
import { applySource, sha256File } from '../test/helpers/disk-image.ts';
import { lab, LAB_ROOT } from '../test/helpers/labs.ts';

const MiB = 1024 * 1024;
const SIZE_MIB = Number(process.env.SIZE_MIB ?? 512);
const dir = process.env.BENCH_DIR ?? join(LAB_ROOT, `bench-${SIZE_MIB}`);
const sh = (cmd: string, args: string[], input?: Buffer) => execFileSync(cmd, args, { encoding: 'utf8', input, maxBuffer: 256 * MiB });
const mib = (n: number) => `${(n / MiB).toFixed(1)} MiB`;
const rate = (n: number, ms: number) => `${(n / MiB / (ms / 1000)).toFixed(0)} MiB/s`;
const rows: string[][] = [];

/** Blocks (4 KiB) that differ between day1 and day2, coalesced. */
function changedExtents(a: string, b: string): Array<{ offset: number; length: number }> {
  const fa = openSync(a, 'r');
  const fb = openSync(b, 'r');
  const BS = 4096;
  const ba = Buffer.alloc(MiB);
  const bb = Buffer.alloc(MiB);
  const out: Array<{ offset: number; length: number }> = [];
  for (let off = 0; off < SIZE_MIB * MiB; off += MiB) {
    readSync(fa, ba, 0, MiB, off);
    readSync(fb, bb, 0, MiB, off);
    for (let i = 0; i < MiB; i += BS) {
      if (ba.compare(bb, i, i + BS, i, i + BS) === 0) continue;
      const last = out[out.length - 1];
      if (last && last.offset + last.length === off + i) last.length += BS;
      else out.push({ offset: off + i, length: BS });
    }
  }
  closeSync(fa);
  closeSync(fb);
  return out;
}

async function main() {
  mkdirSync(dir, { recursive: true });
  const day1 = join(dir, 'day1.raw');
  const day2 = join(dir, 'day2.raw');
  if (!existsSync(day2)) {
    console.log(`generating ${SIZE_MIB} MiB bench images in ${dir} …`);
    execFileSync('bash', ['/work/shared/bench/make-images.sh', dir, 'day1,day2'], { env: { ...process.env, SIZE_MIB: String(SIZE_MIB) }, stdio: 'inherit' });
  }
  console.log(`load average (1/5/15 min) at the start: ${loadavg().map((l) => l.toFixed(2)).join(' / ')} on ${availableParallelism()} cores`);
  const changes = changedExtents(day1, day2);
  const changeBytes = changes.reduce((s, e) => s + e.length, 0);
  const day2Sha = await sha256File(day2);
  console.log(`change day1→day2: ${mib(changeBytes)} in ${changes.length} runs (4 KiB blocks)`);

  await qcow2(day1, day2, changeBytes, day2Sha);
  await rbdBench(day1, day2, changes, changeBytes, day2Sha);

  console.log(`\nload average (1/5/15 min) at the end: ${loadavg().map((l) => l.toFixed(2)).join(' / ')} on ${availableParallelism()} cores`);
  console.log('\n| path | mode | time | bytes read | change | read/change | stored data | result |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.join(' | ')} |`);
}

async function qcow2(day1: string, day2: string, changeBytes: number, day2Sha: string) {
  const ssh = await lab('sshd');
  await lab('libvirt');
  const uuid = '0b5e4c3a-1d2f-4e6a-8b9c-0d1e2f3a4b5c';
  const name = 'instance-0000be0c';
  const inst = join(dir, 'instances', uuid);
  mkdirSync(inst, { recursive: true });
  const base = join(inst, 'base.raw');
  const layer = join(inst, 'disk.sb-day1');
  try { sh('virsh', ['-q', 'destroy', name]); } catch { /* not running */ }
  try { sh('virsh', ['-q', 'undefine', name]); } catch { /* not defined */ }
  rmSync(inst, { recursive: true, force: true });
  mkdirSync(inst, { recursive: true });
  copyFileSync(day1, base);
  // The day1→day2 difference as a qcow2 layer: an empty overlay showing day2, safely rebased onto
  // day1 — qemu-img copies exactly the clusters where the two differ.
  sh('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', day2, layer]);
  sh('qemu-img', ['rebase', '-f', 'qcow2', '-F', 'raw', '-b', base, layer]);
  const layerData = (JSON.parse(sh('qemu-img', ['map', '--output=json', `json:${JSON.stringify({ driver: 'qcow2', backing: null, file: { driver: 'file', filename: layer } })}`])) as Array<{ length: number; data: boolean; present: boolean }>)
    .filter((e) => e.present && e.data)
    .reduce((s, e) => s + e.length, 0);
  console.log(`qcow2 layer holds ${mib(layerData)} (64 KiB clusters) for a ${mib(changeBytes)} change`);
  const xml = `<domain type='${existsSync('/dev/kvm') ? 'kvm' : 'qemu'}'><name>${name}</name><uuid>${uuid}</uuid><memory unit='MiB'>128</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='q35'>hvm</type></os><cpu mode='custom' match='exact' check='none'><model fallback='allow'>qemu64</model></cpu>
<devices><emulator>/usr/bin/qemu-system-x86_64</emulator><disk type='file' device='disk'><driver name='qemu' type='qcow2' cache='none'/><source file='${layer}'/><target dev='vda' bus='virtio'/></disk>
<graphics type='vnc' listen='127.0.0.1' autoport='yes'/><video><model type='none'/></video><memballoon model='none'/></devices></domain>`;
  const xmlPath = join(inst, 'domain.xml');
  execFileSync('tee', [xmlPath], { input: xml, stdio: ['pipe', 'ignore', 'inherit'] });
  sh('virsh', ['-q', 'define', xmlPath]);
  sh('virsh', ['-q', 'start', name]);
  const common: SshBackupOptions = {
    credentials: { host: ssh.SSH_HOST, port: Number(ssh.SSH_PORT), username: ssh.SSH_USER, privateKeyPath: ssh.SSH_KEY },
    novaUuid: uuid,
    backupId: 'x',
    workDir: ssh.SSH_WORK_DIR,
  };
  try {
    // Incremental: the day1 backup's tracking layer holds the day2 change.
    let t0 = Date.now();
    const inc = await SshInstanceBackup.open({ ...common, backupId: 'day2', parent: { vda: JSON.stringify({ layer }) } });
    const d = inc.disks[0];
    const rebuilt = join(dir, 'qcow2-day2.raw');
    const stats = await applySource(rebuilt, d, day1);
    for (const x of inc.disks) await x.commit();
    await inc.close();
    let ms = Date.now() - t0;
    const ok = (await sha256File(rebuilt)) === day2Sha;
    rows.push(['QCOW2 layer over SSH (snapshot, map, NBD read, blockcommit)', d.mode, `${ms} ms`, mib(d.bytesRead), mib(changeBytes), (d.bytesRead / changeBytes).toFixed(2), mib(stats.dataBytes), ok ? 'day2 sha256 ✓' : 'MISMATCH']);

    // Full reads of the same disk, SSH channel vs netcat relay (no tracking: chain restored).
    for (const transport of [{ kind: 'ssh' as const }, { kind: 'netcat' as const, bindAddress: '127.0.0.1', port: 41000 + Math.floor(Math.random() * 8000) }]) {
      t0 = Date.now();
      const full = await SshInstanceBackup.open({ ...common, backupId: `full${transport.kind}`, track: false, transport });
      const fd = full.disks[0];
      const tRead = Date.now();
      let n = 0;
      for await (const e of fd.extents()) n += e.data ? e.data.length : 0;
      const readMs = Date.now() - tRead;
      for (const x of full.disks) await x.commit();
      await full.close();
      ms = Date.now() - t0;
      rows.push([`full read, ${transport.kind === 'ssh' ? 'NBD over the SSH connection' : 'netcat (plain TCP relay)'}`, 'full', `${ms} ms (read ${readMs} ms)`, mib(fd.bytesRead), '-', '-', mib(n), rate(fd.bytesRead, readMs)]);
    }

    // The same full read through the libvirt checkpoint path (pull-mode backup job's NBD export),
    // SSH channel vs netcat relay; not committed, so each run's checkpoint is removed again.
    for (const transport of [{ kind: 'ssh' as const }, { kind: 'netcat' as const, bindAddress: '127.0.0.1', port: 41000 + Math.floor(Math.random() * 8000) }]) {
      t0 = Date.now();
      const cp = await CheckpointInstanceBackup.open({ ...common, backupId: `cp${transport.kind}`, transport });
      const cd = cp.disks[0]!;
      const tRead = Date.now();
      let n = 0;
      for await (const e of cd.extents()) n += e.data ? e.data.length : 0;
      const readMs = Date.now() - tRead;
      await cp.close();
      ms = Date.now() - t0;
      rows.push([`checkpoint full read, ${transport.kind === 'ssh' ? 'NBD over the SSH connection' : 'netcat (plain TCP relay)'}`, 'full', `${ms} ms (read ${readMs} ms)`, mib(cd.bytesRead), '-', '-', mib(n), rate(cd.bytesRead, readMs)]);
    }
  } finally {
    try { sh('virsh', ['-q', 'destroy', name]); } catch { /* stopped */ }
    try { sh('virsh', ['-q', 'undefine', name]); } catch { /* gone */ }
  }
}

async function rbdBench(day1: string, day2: string, changes: Array<{ offset: number; length: number }>, changeBytes: number, day2Sha: string) {
  const ceph = await lab('ceph');
  const image = `bench-${Date.now().toString(36)}`;
  const spec = `rbd/${image}`;
  const admin = ['-c', ceph.CEPH_CONF];
  sh('rbd', [...admin, 'import', '--no-progress', day1, spec]);
  const client = await CephClient.open({
    user: ceph.CEPH_USER,
    keyring: readFileSync(ceph.CEPH_KEYRING, 'utf8'),
    config: `[global]\nmon host = ${ceph.CEPH_MON_HOST}\nms bind ipv6 = false\n`,
    poolStrategy: 'EXCLUDE',
    pools: [],
  });
  try {
    let t0 = Date.now();
    const full = await RbdDiskSource.open(client, { pool: 'rbd', image, backupId: 'day1' });
    const f1 = join(dir, 'rbd-day1.raw');
    const s1 = await applySource(f1, full);
    await full.commit();
    await full.close();
    rows.push(['RBD full (export-diff from creation)', 'full', `${Date.now() - t0} ms`, mib(full.bytesRead), '-', '-', mib(s1.dataBytes), rate(full.bytesRead, Date.now() - t0)]);

    // Write the day2 change through librbd (import-diff of the changed 4 KiB runs).
    const fd = openSync(day2, 'r');
    const records: DiffRecord[] = changes.map((c) => {
      const data = Buffer.alloc(c.length);
      readSync(fd, data, 0, c.length, c.offset);
      return { type: 'write', offset: c.offset, length: c.length, data };
    });
    closeSync(fd);
    sh('rbd', [...admin, 'import-diff', '--no-progress', '-', spec], encodeExportDiff(records));

    t0 = Date.now();
    const inc = await RbdDiskSource.open(client, { pool: 'rbd', image, backupId: 'day2', parent: full.checkpoint });
    const f2 = join(dir, 'rbd-day2.raw');
    const s2 = await applySource(f2, inc, f1);
    await inc.commit();
    await inc.close();
    const ms = Date.now() - t0;
    const ok = (await sha256File(f2)) === day2Sha;
    rows.push(['RBD export-diff (zero-detected)', inc.mode, `${ms} ms`, mib(inc.bytesRead), mib(changeBytes), (inc.bytesRead / changeBytes).toFixed(2), mib(s2.dataBytes), ok ? `day2 sha256 ✓ (${mib(inc.bytesZeroDetected)} zeros dropped)` : 'MISMATCH']);
  } finally {
    await client.close();
    try { sh('rbd', [...admin, 'snap', 'purge', '--no-progress', spec]); sh('rbd', [...admin, 'rm', '--no-progress', spec]); } catch { /* best effort */ }
  }
}

await main();
