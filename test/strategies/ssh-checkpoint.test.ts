// SSH transfer on libvirt checkpoints, faults against the real libvirt/KVM lab domain: a connection
// dropped mid-transfer and a crashed run leave neither a backup job nor checkpoint metadata, and the
// parent's bitmap still yields a correct incremental afterwards.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StrategyError } from '../../src/engine/strategies/disk-source.ts';
import type { HypervisorCredentials } from '../../src/engine/strategies/ssh/connection.ts';
import { CheckpointInstanceBackup } from '../../src/engine/strategies/ssh/checkpoint-backup.ts';
import { holdLab, lab, labCommand } from '../helpers/labs.ts';

const MiB = 1024 * 1024;
let ssh: Record<string, string>;
let releaseDomain: (() => void) | undefined;
let vm: Record<string, string>;
let creds: HypervisorCredentials;
const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { encoding: 'utf8' });
const blklist = () => sh('virsh', ['-q', 'domblklist', vm.LIBVIRT_DOMAIN!]).trim();
const checkpoints = () => sh('virsh', ['-q', 'checkpoint-list', vm.LIBVIRT_DOMAIN!, '--name']).trim();
const job = () => sh('virsh', ['domjobinfo', vm.LIBVIRT_DOMAIN!]);
function guestWrite(pattern: number, offset: number, length: number) {
  sh('virsh', ['qemu-monitor-command', vm.LIBVIRT_DOMAIN!, '--hmp', `qemu-io -d /machine/peripheral/virtio-disk0/virtio-backend "write -P ${pattern} ${offset} ${length}"`]);
}
const open = (backupId: string, parent?: Record<string, string>) =>
  CheckpointInstanceBackup.open({ credentials: creds, novaUuid: vm.LIBVIRT_UUID!, domainName: vm.LIBVIRT_DOMAIN, backupId, parent, workDir: ssh.SSH_WORK_DIR, maxExtent: 64 * 1024 });

async function fullBackup(id: string): Promise<Record<string, string>> {
  const s = await open(id);
  for (const d of s.disks) for await (const _ of d.extents()) void _;
  for (const d of s.disks) await d.commit();
  await s.close();
  return Object.fromEntries(s.disks.map((d) => [d.name, d.checkpoint]));
}

beforeAll(async () => {
  releaseDomain = await holdLab('libvirt');
  ssh = await lab('sshd');
  vm = await labCommand('libvirt', 'reset-domain');
  creds = { host: ssh.SSH_HOST!, port: Number(ssh.SSH_PORT), username: ssh.SSH_USER!, privateKeyPath: ssh.SSH_KEY };
}, 900_000);

afterAll(async () => {
  await labCommand('libvirt', 'reset-domain');
  releaseDomain?.();
}, 120_000);

describe('SSH transfer on libvirt checkpoints: faults', { timeout: 300_000 }, () => {
  it('a connection dropped mid-transfer ends the job, leaves no checkpoint metadata, and the parent still tracks every change', async () => {
    const before = blklist();
    const parent = await fullBackup('cp1');
    guestWrite(0xa1, 5 * MiB, 128 * 1024);

    const s = await open('cp2', parent);
    expect(s.disks.map((d) => d.mode)).toEqual(['incremental', 'incremental']);
    expect(job()).toMatch(/Backup/);
    const err = await (async () => {
      let n = 0;
      for await (const _ of s.disks[0]!.extents()) if (++n === 1) s.conn.destroy();
    })().catch((e) => e);
    expect(err).toBeInstanceOf(StrategyError);
    expect(err.code).toBe('TRANSFER_FAILED');
    await s.close(); // reconnects to the pinned host key and rolls back
    expect(job()).not.toMatch(/Backup/);
    expect(checkpoints()).toBe('');
    expect(blklist()).toBe(before);
    expect(sh('ls', [ssh.SSH_WORK_DIR!]).trim()).toBe('');

    // The next try from the same parent sees the write (the failed run's checkpoint is gone).
    guestWrite(0xa2, 9 * MiB, 64 * 1024);
    const again = await open('cp3', parent);
    expect(await again.disks[0]!.changedExtents()).toEqual([
      { offset: 5 * MiB, length: 128 * 1024 },
      { offset: 9 * MiB, length: 64 * 1024 },
    ]);
    const data: Buffer[] = [];
    for await (const e of again.disks[0]!.extents()) data.push(e.data!);
    expect(Buffer.concat(data).equals(Buffer.concat([Buffer.alloc(128 * 1024, 0xa1), Buffer.alloc(64 * 1024, 0xa2)]))).toBe(true);
    expect(again.disks[0]!.bytesRead).toBe(192 * 1024);
    for (const d of again.disks) await d.commit();
    await again.close();
    expect(checkpoints()).toBe('');
  });

  it("a crashed run's backup job and checkpoint are removed by the next backup", async () => {
    const parent = await fullBackup('cr1');
    // What a data mover that died after starting its job leaves behind.
    const dir = ssh.SSH_WORK_DIR!;
    writeFileSync(`${dir}/b.xml`, `<domainbackup mode='pull'><server transport='unix' socket='${dir}/crash.sock'/><disks><disk name='vda' backup='yes' type='file'><scratch file='${dir}/crash.scratch'/></disk><disk name='vdb' backup='no'/></disks></domainbackup>`);
    writeFileSync(`${dir}/c.xml`, `<domaincheckpoint><name>sb-crashed</name><disks><disk name='vda' checkpoint='bitmap'/><disk name='vdb' checkpoint='no'/></disks></domaincheckpoint>`);
    sh('virsh', ['-q', 'backup-begin', vm.LIBVIRT_DOMAIN!, '--backupxml', `${dir}/b.xml`, '--checkpointxml', `${dir}/c.xml`]);
    sh('rm', ['-f', `${dir}/b.xml`, `${dir}/c.xml`]);
    guestWrite(0xb1, 1 * MiB, 64 * 1024);

    const s = await open('cr2', parent);
    expect(s.recovered).toEqual(['backup job', 'checkpoint sb-crashed']);
    expect(s.disks[0]!.mode).toBe('incremental');
    expect(await s.disks[0]!.changedExtents()).toEqual([{ offset: 1 * MiB, length: 64 * 1024 }]);
    for (const d of s.disks) await d.commit();
    await s.close();
    expect(checkpoints()).toBe('');
    expect(job()).not.toMatch(/Backup/);
  });
  it('netcat transport: the checkpoint export read over a plain TCP relay gives exactly the guest\'s write, and the relay goes with the job', async () => {
    const parent = await fullBackup('nc1');
    guestWrite(0x5e, 6 * MiB, 64 * 1024);
    const port = 42000 + Math.floor(Math.random() * 8000);
    const s = await CheckpointInstanceBackup.open({
      credentials: creds, novaUuid: vm.LIBVIRT_UUID!, domainName: vm.LIBVIRT_DOMAIN, backupId: 'nc2', parent, workDir: ssh.SSH_WORK_DIR,
      transport: { kind: 'netcat', bindAddress: '127.0.0.1', port },
    });
    const vda = s.disks.find((d) => d.name === 'vda')!;
    expect(vda.mode).toBe('incremental');
    const got: Array<{ offset: number; data: Buffer | null }> = [];
    for await (const e of vda.extents()) got.push({ offset: e.offset, data: e.data });
    expect(got).toEqual([{ offset: 6 * MiB, data: Buffer.alloc(64 * 1024, 0x5e) }]);
    for (const d of s.disks) await d.commit();
    await s.close();
    expect(checkpoints()).toBe('');
    const refused = await new Promise<boolean>((resolve) => {
      const c = connect({ host: '127.0.0.1', port }, () => (c.destroy(), resolve(false)));
      c.once('error', () => resolve(true));
    });
    expect(refused).toBe(true);
    expect(sh('ls', [ssh.SSH_WORK_DIR!]).trim()).toBe('');
  });
});
