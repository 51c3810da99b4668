// The repository engine over the object-store backends, on the real Swift lab: a backup round
// trip per backend, and a server that stops in the middle of a backup (through the fault proxy).
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '../../src/engine/destinations/backend.ts';
import { openBackend } from '../../src/engine/destinations/index.ts';
import { FileDiskSource, Repository } from '../../src/engine/repository/repository.ts';
import { FaultProxy } from '../helpers/fault-proxy.ts';
import { ensureSwiftLab, uniqueName, type SwiftLab } from '../helpers/swift-lab.ts';
import { until } from '../repository/cli-helpers.ts';
import { GatedSource, MASTER_KEY, MiB, makeImage, sha256File, tempDir } from '../repository/helpers.ts';
import { readLock } from '../../src/engine/repository/locks.ts';

let lab: SwiftLab;
let proxy: FaultProxy;
let dir: string;

beforeAll(async () => {
  lab = await ensureSwiftLab();
  proxy = await FaultProxy.start(lab.proxyUrl);
  dir = await tempDir('sbx-remote-repo-');
});
afterAll(async () => {
  await proxy?.close();
  await fs.rm(dir, { recursive: true, force: true });
});

type Target = { name: string; destination: (endpoint: string, name: string, settings?: string) => string; env: () => NodeJS.ProcessEnv };
const targets: Target[] = [
  {
    name: 's3',
    // 5 MiB parts: the 16 MiB packs go up as multipart uploads.
    destination: (endpoint, name, settings = '') => `s3://${name}/repo?endpoint=${endpoint}&region=${lab.s3Region}&part_size=5M&multipart_threshold=5M${settings}`,
    env: () => ({ AWS_ACCESS_KEY_ID: lab.accessKeyId, AWS_SECRET_ACCESS_KEY: lab.secretAccessKey }),
  },
  {
    name: 'swift',
    // 4 MiB segments: the packs become SLOs.
    destination: (endpoint, name, settings = '') => `swift://${name}/repo?auth=${endpoint}/auth/v1.0&segment_size=4M${settings}`,
    env: () => ({ ST_USER: lab.user, ST_KEY: lab.key }),
  },
];

async function backupFile(repo: Repository, file: string) {
  const source = await FileDiskSource.open(file);
  try {
    return await repo.backup([{ name: 'vda', source }], { tag: 'test', metadata: { instance: 'vm-1' } });
  } finally {
    await source.close();
  }
}

describe.each(targets)('repository on $name', (t) => {
  it('backs up and restores byte-identical; verify reads every chunk', async () => {
    const name = uniqueName(`repo-${t.name}`);
    const backend = await openBackend(t.destination(lab.proxyUrl, name), t.env());
    const repo = await Repository.init(backend, { masterKey: MASTER_KEY });
    const file = path.join(dir, `${t.name}.raw`);
    // Holes, compressible text and 9 MiB of random data (so a pack exceeds the part size).
    await makeImage(file, 13 * MiB + 12345, [
      { offset: 0, length: 2 * MiB + 100, kind: 'text' },
      { offset: 3 * MiB, length: 9 * MiB, kind: 'random' },
      { offset: 13 * MiB, length: 12345, kind: 'random' },
    ]);
    const result = await backupFile(repo, file);
    expect(result.storedBytes).toBeGreaterThan(0);
    const out = path.join(dir, `${t.name}.restored`);
    await repo.restore(result.id, 0, { kind: 'file', path: out });
    expect(await sha256File(out)).toBe(await sha256File(file));
    const report = await repo.verify({ readData: true });
    expect(report.errors).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.backups).toBe(1);
    // A second process opening the destination sees the same backup.
    const other = await openBackend(t.destination(lab.proxyUrl, name), t.env());
    const again = await Repository.open(other, MASTER_KEY);
    expect((await again.list()).map((b) => b.id)).toEqual([result.id]);
    await again.close();
    await other.close();
    // The pack went up in parts/segments (above 5 MiB / 4 MiB).
    const packs: number[] = [];
    for await (const o of backend.list('data/')) packs.push(o.size);
    expect(Math.max(...packs)).toBeGreaterThan(5 * MiB);
    await repo.close();
    await backend.close();
  });

  it('a server that stops mid-backup leaves no visible backup, and verify passes', async () => {
    const name = uniqueName(`stop-${t.name}`);
    const setup = await openBackend(t.destination(lab.proxyUrl, name), t.env());
    const first = await Repository.init(setup, { masterKey: MASTER_KEY });
    const small = path.join(dir, `${t.name}-first.raw`);
    await makeImage(small, 3 * MiB, [{ offset: 0, length: 3 * MiB, kind: 'text' }]);
    const kept = await backupFile(first, small);
    await first.close();
    await setup.close();

    // Through the proxy: the server "stops" 1 MiB into the first pack upload of the next backup.
    const viaProxy = await openBackend(t.destination(proxy.url, name, '&retries=1&timeout=2'), t.env());
    const repo = await Repository.open(viaProxy, MASTER_KEY, { lockWaitMs: 5_000 });
    const big = path.join(dir, `${t.name}-big.raw`);
    await makeImage(big, 20 * MiB, [{ offset: 0, length: 20 * MiB, kind: 'random' }]);
    proxy.add({
      // A pack PUT, a multipart part of one, or an SLO segment of one: all have /repo/data/ in the path.
      match: (req) => req.method === 'PUT' && req.url!.includes('/repo/data/'),
      fault: { kind: 'cut-request', afterBytes: MiB, thenDown: true },
      times: 1,
    });
    await expect(backupFile(repo, big)).rejects.toThrow();
    expect(proxy.seen.some((s) => s.fault === 'cut-request')).toBe(true);
    await repo.close().catch(() => {});
    await viaProxy.close();
    proxy.up();
    proxy.clear();

    const backend: Backend = await openBackend(t.destination(lab.proxyUrl, name), t.env());
    const after = await Repository.open(backend, MASTER_KEY);
    expect((await after.list()).map((b) => b.id)).toEqual([kept.id]);
    const report = await after.verify({ readData: true });
    expect(report.errors).toEqual([]);
    expect(report.ok).toBe(true);
    await after.close();
    await backend.close();
  });

  it('locks in the object store: a live lock of another host blocks prune, a stale one is taken over, a backup refreshes its own', async () => {
    const name = uniqueName(`locks-${t.name}`);
    const backend = await openBackend(t.destination(lab.proxyUrl, name), t.env());
    const repo = await Repository.init(backend, { masterKey: MASTER_KEY }, { lockWaitMs: 0, lockRefreshMs: 1000 });
    const file = path.join(dir, `${t.name}-locks.raw`);
    await makeImage(file, 3 * MiB, [{ offset: 0, length: 3 * MiB, kind: 'text' }]);
    await backupFile(repo, file);
    const lockKeys = async () => {
      const keys: string[] = [];
      for await (const o of backend.list('locks/')) keys.push(o.key);
      return keys;
    };
    const otherHost = (secondsSinceRefresh: number) => {
      const refreshed = Date.now() - secondsSinceRefresh * 1000;
      return Buffer.from(JSON.stringify({ kind: 'shared', operation: 'backup', host: 'backup-host-7.example', pid: 4242, created: new Date(Date.now() - 120_000).toISOString(), refreshed: new Date(refreshed).toISOString(), expires: new Date(refreshed + 300_000).toISOString() }));
    };

    await backend.put('locks/0123456789abcdef0123456789abcdef', otherHost(5));
    await expect(repo.prune({ keepLast: 1 })).rejects.toMatchObject({ code: 'LOCKED', message: expect.stringMatching(/held by host backup-host-7\.example \(pid 4242\) for 2m \d\ds, last refreshed \d+s ago/) });
    await backend.delete('locks/0123456789abcdef0123456789abcdef');
    await backend.put('locks/fedcba9876543210fedcba9876543210', otherHost(360)); // 6 minutes without a heartbeat
    expect((await repo.prune({ keepLast: 1 })).removedLocks).toBe(1);
    expect(await lockKeys()).toEqual([]);

    const src = new GatedSource(await FileDiskSource.open(file));
    const running = repo.backup([{ name: 'vda', source: src }], { tag: 'test' });
    await until(async () => src.reading);
    const [first] = await lockKeys();
    await until(async () => {
      const keys = await lockKeys();
      if (keys.length !== 1 || keys[0] === first) return false;
      const info = await readLock(backend, keys[0]!);
      return info !== null && info.refreshed !== info.created;
    });
    src.open();
    const done = await running;
    expect(await lockKeys()).toEqual([]);
    const out = path.join(dir, `${t.name}-locks.restored`);
    await repo.restore(done.id, 0, { kind: 'file', path: out });
    expect(await sha256File(out)).toBe(await sha256File(file));
    await repo.close();
    await backend.close();
  });
});
