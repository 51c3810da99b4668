// The disk-attachment path end to end against the simulator: snapshot (force, in use) →
// volume from the snapshot → attach to the proxy server → read what the proxy sees (the nfs
// connection_info file, or the by-id device link) → detach → delete; and a stuck attach
// cleaned up without leaks.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  byIdCandidates, isNfsConnectionInfo, nfsFilePath, OpenStackWaitError, type ServiceClients,
} from '../../src/openstack/index.ts';
import { connect, startSimulator, type TestSim } from '../helpers/simulator.ts';

let t: TestSim;
let os: ServiceClients;
beforeAll(async () => {
  t = await startSimulator();
  const cloud = connect(t);
  os = cloud.clients(cloud.defaultSession());
});
afterAll(async () => t?.close());

const wait = { intervalMs: 20, timeoutMs: 5000 };
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function cycle(sourceVolumeId: string, byIdRoot?: string) {
  const before = t.sim.counts();
  const sourceBytes = readFileSync(t.sim.files.volumePath(sourceVolumeId));
  expect(sourceBytes.some((b) => b !== 0)).toBe(true); // it holds sample data

  const snap = await os.cinder.createSnapshot({ volume_id: sourceVolumeId, force: true, name: 'sb-test-snap' });
  expect(snap.status).toBe('creating');
  await os.cinder.waitForSnapshot(snap.id, wait);
  const tmp = await os.cinder.createVolume({ size: 1, snapshot_id: snap.id, name: 'sb-test-tmp' });
  expect((await os.cinder.waitForVolume(tmp.id, ['available'], wait)).snapshot_id).toBe(snap.id);

  const att = await os.nova.attachVolume(t.seed.proxyServerId, tmp.id);
  expect(att.volumeId).toBe(tmp.id);
  const inUse = await os.cinder.waitForVolume(tmp.id, ['in-use'], wait);
  expect(inUse.attachments[0]).toMatchObject({ server_id: t.seed.proxyServerId, volume_id: tmp.id });
  const novaSide = await os.nova.listVolumeAttachments(t.seed.proxyServerId);
  expect(novaSide.find((a) => a.volumeId === tmp.id)?.attachment_id).toBe(inUse.attachments[0]!.attachment_id);

  const [cinderAtt] = await os.cinder.listAttachments({ volumeId: tmp.id });
  let readPath: string;
  if (byIdRoot) {
    readPath = byIdCandidates(tmp.id, byIdRoot).find((p) => existsSync(p))!;
    expect(path.basename(readPath)).toBe(`virtio-${tmp.id.slice(0, 20)}`);
  } else {
    expect(isNfsConnectionInfo(cinderAtt!.connection_info)).toBe(true);
    readPath = nfsFilePath(cinderAtt!.connection_info as never);
    expect(readPath).toBe(t.sim.files.volumePath(tmp.id));
  }
  const read = readFileSync(readPath);
  expect(read.length).toBe(4 << 20);
  expect(sha(read)).toBe(sha(sourceBytes));

  await os.nova.detachVolume(t.seed.proxyServerId, tmp.id);
  await os.cinder.waitForVolume(tmp.id, ['available'], wait);
  expect(await os.cinder.listAttachments({ volumeId: tmp.id })).toEqual([]);
  if (byIdRoot) expect(existsSync(readPath)).toBe(false);
  await os.cinder.deleteVolume(tmp.id);
  await os.cinder.waitForVolumeGone(tmp.id, wait);
  await os.cinder.deleteSnapshot(snap.id);
  await os.cinder.waitForSnapshotGone(snap.id, wait);
  expect(t.sim.counts()).toEqual(before);
  expect(existsSync(t.sim.files.volumePath(tmp.id))).toBe(false);
}

describe('disk attachment to a proxy (simulator)', () => {
  it('snapshot → volume → attach → read the nfs file → detach → delete, bytes equal to the source', async () => {
    await cycle(t.seed.volumes['web-1-data']!);
  });

  it('the snapshot is a point in time: writes to the source after it do not show', async () => {
    const src = t.seed.volumes['db-1-data']!;
    const before = readFileSync(t.sim.files.volumePath(src));
    const snap = await os.cinder.createSnapshot({ volume_id: src, force: true });
    await t.sim.files.writeAt(t.sim.files.volumePath(src), 0, Buffer.from('changed after the snapshot'));
    await os.cinder.waitForSnapshot(snap.id, wait);
    const vol = await os.cinder.createVolume({ size: 1, snapshot_id: snap.id });
    await os.cinder.waitForVolume(vol.id, ['available'], wait);
    expect(sha(readFileSync(t.sim.files.volumePath(vol.id)))).toBe(sha(before));
    await os.cinder.deleteVolume(vol.id);
    await os.cinder.waitForVolumeGone(vol.id, wait);
    await os.cinder.deleteSnapshot(snap.id);
    await os.cinder.waitForSnapshotGone(snap.id, wait);
  });

  it('an attach that never completes times out, and cleanup leaves no volume, snapshot or attachment', async () => {
    const before = t.sim.counts();
    const snap = await os.cinder.createSnapshot({ volume_id: t.seed.volumes['app-a1-data']!, force: true });
    await os.cinder.waitForSnapshot(snap.id, wait);
    const tmp = await os.cinder.createVolume({ size: 1, snapshot_id: snap.id, name: 'sb-stuck' });
    await os.cinder.waitForVolume(tmp.id, ['available'], wait);
    t.sim.faults.neverCompleteAttach = true;
    try {
      await os.nova.attachVolume(t.seed.proxyServerId, tmp.id);
      const err = await os.cinder.waitForVolume(tmp.id, ['in-use'], { intervalMs: 20, timeoutMs: 300 }).catch((e) => e);
      expect(err).toBeInstanceOf(OpenStackWaitError);
      expect(err).toMatchObject({ reason: 'timeout', lastStatus: 'attaching' });
    } finally {
      t.sim.faults.neverCompleteAttach = false;
    }
    // Cleanup as the backup engine does it: a plain detach is refused while attaching, so force.
    const detach = await os.nova.detachVolume(t.seed.proxyServerId, tmp.id).catch((e) => e);
    expect(detach).toMatchObject({ status: 400 });
    await os.cinder.forceDeleteVolume(tmp.id);
    await os.cinder.waitForVolumeGone(tmp.id, wait);
    await os.cinder.deleteSnapshot(snap.id);
    await os.cinder.waitForSnapshotGone(snap.id, wait);
    expect(t.sim.counts()).toEqual(before);
    expect((await os.nova.listVolumeAttachments(t.seed.proxyServerId)).map((a) => a.volumeId)).not.toContain(tmp.id);
  });
});

describe('block-device mode (simulator)', () => {
  let b: TestSim;
  beforeAll(async () => {
    const dir = path.join(t.dir, 'by-id');
    b = await startSimulator({ byIdRoot: dir });
  });
  afterAll(async () => b?.close());

  it('an attached volume appears under by-id as virtio-<first 20 chars of its ID>', async () => {
    const prev = { t, os };
    t = b;
    const cloud = connect(b);
    os = cloud.clients(cloud.defaultSession());
    try {
      await cycle(b.seed.volumes['app-b1-data']!, b.sim.opts.byIdRoot);
      expect(realpathSync(b.sim.opts.byIdRoot!)).toBeTruthy();
    } finally {
      ({ t, os } = prev);
    }
  });
});
