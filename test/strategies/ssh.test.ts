// SSH transfer against real peers: an OpenSSH server on loopback and a running libvirt/KVM domain
// shaped like a Nova instance (qcow2 on a raw _base). Guest writes go through QEMU's own block
// layer (HMP qemu-io on the virtio device), exactly as guest I/O would.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { StrategyError } from '../../src/engine/strategies/disk-source.ts';
import { HypervisorConnection, type HypervisorCredentials } from '../../src/engine/strategies/ssh/connection.ts';
import { SshInstanceBackup, type SshBackupOptions } from '../../src/engine/strategies/ssh/instance-backup.ts';
import { applySource, sha256File } from '../helpers/disk-image.ts';
import { holdLab, lab, labCommand } from '../helpers/labs.ts';

let ssh: Record<string, string>;
let releaseDomain: (() => void) | undefined;
let vm: Record<string, string>;
let creds: HypervisorCredentials;
const tmp = mkdtempSync(join(tmpdir(), 'sb-ssh-test-'));

const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8' });
const blklist = () => sh('virsh', ['-q', 'domblklist', vm.LIBVIRT_DOMAIN]).trim();
const chainOf = (image: string) =>
  (JSON.parse(sh('qemu-img', ['info', '--backing-chain', '--output=json', '-U', image])) as Array<{ filename: string }>).map((l) => l.filename);
const MiB = 1024 * 1024;
/** Write through the guest's virtio disk (vda → virtio-disk0, vdb → virtio-disk1). */
function guestWrite(target: 'vda' | 'vdb', pattern: number, offset: number, length: number) {
  const dev = `/machine/peripheral/virtio-disk${target === 'vda' ? 0 : 1}/virtio-backend`;
  const out = sh('virsh', ['qemu-monitor-command', vm.LIBVIRT_DOMAIN, '--hmp', `qemu-io -d ${dev} "write -P ${pattern} ${offset} ${length}"`]);
  expect(out).not.toMatch(/error/i);
}
const sbFiles = () => sh('ls', [join(vm.LIBVIRT_ROOT_DISK, '..')]).split('\n').filter((f) => f.includes('.sb-'));

async function backup(opts: Partial<SshBackupOptions> & { backupId: string; parentId?: string }) {
  const { parentId: _, ...o } = opts;
  const session = await SshInstanceBackup.open({ credentials: creds, novaUuid: vm.LIBVIRT_UUID, workDir: ssh.SSH_WORK_DIR, ...o });
  const results: Record<string, { image: string; ref: string; mode: string; bytesRead: number; checkpoint: string; fallbackReason: string | null }> = {};
  try {
    for (const d of session.disks) {
      // Reference: the frozen chain as qemu-img sees it, flattened to raw.
      const ref = join(tmp, `${opts.backupId}-${d.name}.ref.raw`);
      sh('qemu-img', ['convert', '-U', '-O', 'raw', d.frozenImage, ref]);
      const image = join(tmp, `${opts.backupId}-${d.name}.raw`);
      const parentImage = opts.parent ? join(tmp, `${opts.parentId}-${d.name}.raw`) : undefined;
      await applySource(image, d, d.mode === 'incremental' ? parentImage : undefined);
      results[d.name] = { image, ref, mode: d.mode, bytesRead: d.bytesRead, checkpoint: '', fallbackReason: d.fallbackReason };
    }
    for (const d of session.disks) {
      await d.commit();
      results[d.name].checkpoint = d.checkpoint;
    }
  } finally {
    await session.close();
  }
  return results;
}

beforeAll(async () => {
  releaseDomain = await holdLab('libvirt');
  ssh = await lab('sshd');
  vm = await lab('libvirt');
  creds = { host: ssh.SSH_HOST, port: Number(ssh.SSH_PORT), username: ssh.SSH_USER, privateKeyPath: ssh.SSH_KEY };
}, 900_000);

afterAll(() => {
  releaseDomain?.();
  rmSync(tmp, { recursive: true, force: true });
});

describe('SSH connection', { timeout: 120_000 }, () => {
  it('pins the host key on first contact and refuses a changed key', async () => {
    const first = await HypervisorConnection.connect({ ...creds, hostKeyFingerprint: null });
    expect(first.hostKeyFingerprint).toBe(ssh.SSH_HOST_KEY_SHA256);
    expect((await first.run(['virsh', '-q', 'domname', vm.LIBVIRT_UUID])).trim()).toBe(vm.LIBVIRT_DOMAIN);
    first.close();

    const pinned = await HypervisorConnection.connect({ ...creds, hostKeyFingerprint: first.hostKeyFingerprint });
    pinned.close();

    const err = await HypervisorConnection.connect({ ...creds, hostKeyFingerprint: 'SHA256:' + 'A'.repeat(43) }).catch((e) => e);
    expect(err).toBeInstanceOf(StrategyError);
    expect(err.code).toBe('HOST_KEY_MISMATCH');
    expect(err.message).toContain(ssh.SSH_HOST_KEY_SHA256);
  });

  it('logs in with a password, rejects a wrong one, and applies the command prefix', async () => {
    const pw = { host: ssh.SSH_HOST, port: Number(ssh.SSH_PORT), username: ssh.SSH_PASSWORD_USER };
    const c = await HypervisorConnection.connect({ ...pw, password: ssh.SSH_PASSWORD, commandPrefix: 'env STRONGBOX_IN=container' });
    expect((await c.run(['id', '-un'])).trim()).toBe(ssh.SSH_PASSWORD_USER);
    expect((await c.run(['printenv', 'STRONGBOX_IN'])).trim()).toBe('container');
    expect((await c.exec(['printenv', 'STRONGBOX_IN'], { prefixed: false })).code).not.toBe(0);
    c.close();
    const err = await HypervisorConnection.connect({ ...pw, password: 'wrong' }).catch((e) => e);
    expect(err.code).toBe('AUTH_FAILED');
    expect(err.message).not.toContain(ssh.SSH_PASSWORD);
  });
});

describe('SSH transfer from a libvirt/KVM domain', { timeout: 300_000 }, () => {
  beforeEach(async () => {
    vm = await labCommand('libvirt', 'reset-domain');
  }, 120_000);

  it('full then incremental backups are byte-identical and the incremental reads only what the guest wrote', async () => {
    const nova = { vda: chainOf(vm.LIBVIRT_ROOT_DISK), vdb: chainOf(vm.LIBVIRT_EPHEMERAL_DISK) };
    expect(nova.vda).toHaveLength(2); // qcow2 on raw _base

    const b1 = await backup({ backupId: 'b1' });
    for (const t of ['vda', 'vdb']) {
      expect(b1[t].mode).toBe('full');
      expect(await sha256File(b1[t].image)).toBe(await sha256File(b1[t].ref));
    }
    // Root disk: 8 + 4 MiB of _base data, 2 + 1 MiB in the instance layer (4M–6M overlaps _base).
    expect(b1.vda.bytesRead).toBe(8 * MiB + 4 * MiB + 1 * MiB);
    // The tracking layer stays; below it, Nova's chain is untouched.
    expect(chainOf(blklist().split('\n')[0].trim().split(/\s+/)[1])).toEqual([`${vm.LIBVIRT_ROOT_DISK}.sb-b1`, ...nova.vda]);

    guestWrite('vda', 0xc1, 1 * MiB, 64 * 1024);
    guestWrite('vda', 0xc2, 50 * MiB, 192 * 1024);
    guestWrite('vdb', 0xc3, 8 * MiB, 128 * 1024);
    const parent = { vda: b1.vda.checkpoint, vdb: b1.vdb.checkpoint };
    const b2 = await backup({ backupId: 'b2', parent, parentId: 'b1' });
    for (const t of ['vda', 'vdb']) {
      expect(b2[t].mode).toBe('incremental');
      expect(b2[t].fallbackReason).toBeNull();
      expect(await sha256File(b2[t].image)).toBe(await sha256File(b2[t].ref));
    }
    expect(b2.vda.bytesRead).toBe(256 * 1024);
    expect(b2.vdb.bytesRead).toBe(128 * 1024);
    // b1's tracking layer was merged into Nova's disk; b2's is now on top.
    expect(chainOf(`${vm.LIBVIRT_ROOT_DISK}.sb-b2`)).toEqual([`${vm.LIBVIRT_ROOT_DISK}.sb-b2`, ...nova.vda]);
    expect(existsSync(`${vm.LIBVIRT_ROOT_DISK}.sb-b1`)).toBe(false);

    // A parent whose tracking layer is gone → full read with the reason.
    const b3 = await backup({ backupId: 'b3', parentId: 'b2', parent: { vda: JSON.stringify({ layer: '/gone.sb-x' }), vdb: b2.vdb.checkpoint } });
    expect(b3.vda.mode).toBe('full');
    expect(b3.vda.fallbackReason).toMatch(/no longer the active layer of vda/);
    expect(b3.vdb.mode).toBe('incremental');
    expect(await sha256File(b3.vda.image)).toBe(await sha256File(b3.vda.ref));
  });

  it('without tracking merges the overlay back: the chain after equals the one before', async () => {
    const before = blklist();
    const b = await backup({ backupId: 'nt1', track: false });
    expect(await sha256File(b.vda.image)).toBe(await sha256File(b.vda.ref));
    expect(blklist()).toBe(before);
    expect(sbFiles()).toEqual([]);
  });

  it('netcat transport: same bytes over a plain TCP relay', async () => {
    const b = await backup({ backupId: 'nc1', track: false, transport: { kind: 'netcat', bindAddress: '127.0.0.1', port: 40000 + Math.floor(Math.random() * 9000) } });
    expect(await sha256File(b.vda.image)).toBe(await sha256File(b.vda.ref));
    expect(await sha256File(b.vdb.image)).toBe(await sha256File(b.vdb.ref));
  });

  it('a connection dropped mid-transfer fails cleanly and leaves no overlay behind', async () => {
    const before = blklist();
    const session = await SshInstanceBackup.open({ credentials: creds, novaUuid: vm.LIBVIRT_UUID, workDir: ssh.SSH_WORK_DIR, backupId: 'drop1', maxExtent: 1 * MiB });
    expect(blklist()).not.toBe(before); // VM is on the temporary overlay now
    const err = await (async () => {
      let n = 0;
      for await (const _ of session.disks[0].extents()) if (++n === 2) session.conn.destroy();
    })().catch((e) => e);
    expect(err).toBeInstanceOf(StrategyError);
    expect(err.code).toBe('TRANSFER_FAILED');
    await session.close(); // reconnects to the pinned host key and merges back
    expect(blklist()).toBe(before);
    expect(sbFiles()).toEqual([]);
    expect(sh('ls', [ssh.SSH_WORK_DIR]).trim()).toBe(''); // no qemu-nbd socket or pid left
  });

  it('a failed snapshot leaves the VM as it was, with the reason', async () => {
    const before = blklist();
    const err = await SshInstanceBackup.open({ credentials: creds, novaUuid: vm.LIBVIRT_UUID, backupId: 'fs1', overlayDir: '/nonexistent/dir' }).catch((e) => e);
    expect(err).toBeInstanceOf(StrategyError);
    expect(err.code).toBe('SNAPSHOT_FAILED');
    expect(err.reason).toMatch(/instance-00000001/);
    expect(blklist()).toBe(before);
  });

  it('a failed blockcommit is a typed failure with the reason, and the next backup merges the overlay back', async () => {
    const before = blklist();
    const session = await SshInstanceBackup.open({ credentials: creds, novaUuid: vm.LIBVIRT_UUID, workDir: ssh.SSH_WORK_DIR, backupId: 'bc1', track: false });
    const vda = session.disks[0];
    for await (const _ of vda.extents()) void _;
    // A foreign reader (e.g. a leftover qemu-nbd) holds the frozen layer: QEMU cannot take the
    // write lock it needs to merge the overlay into it.
    const pid = join(tmp, 'foreign.pid');
    sh('qemu-nbd', ['--fork', `--pid-file=${pid}`, '-r', '-f', 'qcow2', '-k', join(tmp, 'foreign.sock'), vda.frozenImage]);
    try {
      const err = await vda.commit().catch((e) => e);
      expect(err).toBeInstanceOf(StrategyError);
      expect(err.code).toBe('BLOCKCOMMIT_FAILED');
      expect(err.reason).toMatch(/disk\.sb-bc1.*lock/);
      await expect(session.close()).rejects.toMatchObject({ code: 'BLOCKCOMMIT_FAILED' });
    } finally {
      sh('kill', [readFileSync(pid, 'utf8').trim()]);
    }
    await new Promise((r) => setTimeout(r, 300));
    const next = await SshInstanceBackup.open({ credentials: creds, novaUuid: vm.LIBVIRT_UUID, workDir: ssh.SSH_WORK_DIR, backupId: 'bc2', track: false });
    expect(next.recovered).toContain(`${vm.LIBVIRT_ROOT_DISK}.sb-bc1`);
    for (const d of next.disks) await d.commit();
    await next.close();
    expect(blklist()).toBe(before);
    expect(sbFiles()).toEqual([]);
  });

  it('an unknown instance is a clean DOMAIN_NOT_FOUND', async () => {
    const err = await SshInstanceBackup.open({ credentials: creds, novaUuid: '00000000-0000-0000-0000-000000000000', backupId: 'x' }).catch((e) => e);
    expect(err.code).toBe('DOMAIN_NOT_FOUND');
  });

  it('a VM left on a temporary overlay by a crashed run is merged back by the next backup', async () => {
    const before = blklist();
    const crashed = await SshInstanceBackup.open({ credentials: creds, novaUuid: vm.LIBVIRT_UUID, workDir: ssh.SSH_WORK_DIR, backupId: 'crash1' });
    crashed.conn.destroy(); // the data mover died: nobody closes this session
    guestWrite('vda', 0xee, 2 * MiB, 64 * 1024);
    const next = await SshInstanceBackup.open({ credentials: creds, novaUuid: vm.LIBVIRT_UUID, workDir: ssh.SSH_WORK_DIR, backupId: 'after1', track: false });
    expect(next.recovered.sort()).toEqual([`${vm.LIBVIRT_EPHEMERAL_DISK}.sb-crash1`, `${vm.LIBVIRT_ROOT_DISK}.sb-crash1`]);
    const ref = join(tmp, 'after1.ref.raw');
    sh('qemu-img', ['convert', '-U', '-O', 'raw', next.disks[0].frozenImage, ref]);
    const img = join(tmp, 'after1.raw');
    await applySource(img, next.disks[0]);
    expect(await sha256File(img)).toBe(await sha256File(ref));
    for (const d of next.disks) await d.commit();
    await next.close();
    expect(blklist()).toBe(before);
    sh('rm', ['-f', ...sh('ls', [ssh.SSH_WORK_DIR]).split('\n').filter(Boolean).map((f) => join(ssh.SSH_WORK_DIR, f))]);
  });
});
