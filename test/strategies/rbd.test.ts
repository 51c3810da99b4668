// Ceph RBD source against a real single-node Ceph cluster (test/labs/ceph.sh). Known data is
// written with `rbd import-diff` of diff streams built here, the reference is `rbd export`.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StrategyError } from '../../src/engine/strategies/disk-source.ts';
import { CephClient, type CephStorageProvider } from '../../src/engine/strategies/rbd/ceph-client.ts';
import { encodeExportDiff, parseExportDiff, type DiffRecord } from '../../src/engine/strategies/rbd/export-diff.ts';
import { RbdDiskSource } from '../../src/engine/strategies/rbd/rbd-source.ts';
import { runBackup } from '../../src/engine/repository/backup.ts';
import { runRestore } from '../../src/engine/repository/restore.ts';
import { toDiskInput } from '../../src/engine/strategies/disk-source.ts';
import { newRepository } from '../repository/helpers.ts';
import { applySource, sha256File } from '../helpers/disk-image.ts';
import { lab } from '../helpers/labs.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
let ceph: Record<string, string>;
let provider: CephStorageProvider;
const tmp = mkdtempSync(join(tmpdir(), 'sb-rbd-test-'));
const run = `t${Date.now().toString(36)}`;

/** Admin-side rbd (test setup and references). */
const rbd = (...args: string[]) => execFileSync('rbd', ['-c', ceph.CEPH_CONF, ...args], { encoding: 'utf8', maxBuffer: 64 * MiB });
function writeImage(spec: string, records: DiffRecord[]) {
  execFileSync('rbd', ['-c', ceph.CEPH_CONF, '--no-progress', 'import-diff', '-', spec], { input: encodeExportDiff(records) });
}
async function exportSha(spec: string) {
  const f = join(tmp, spec.replace(/[/@]/g, '_') + '.ref');
  rbd('export', '--no-progress', spec, f);
  return sha256File(f);
}
const snapNames = (spec: string) => (JSON.parse(rbd('snap', 'ls', '--format', 'json', spec)) as Array<{ name: string }>).map((s) => s.name);

beforeAll(async () => {
  ceph = await lab('ceph');
  provider = {
    user: ceph.CEPH_USER,
    keyring: readFileSync(ceph.CEPH_KEYRING, 'utf8'),
    config: `[global]\nmon host = ${ceph.CEPH_MON_HOST}\nms bind ipv6 = false\n`,
    poolStrategy: 'EXCLUDE',
    pools: [],
  };
}, 900_000);

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('export-diff stream parser', () => {
  it('parses what it encodes and splits large writes', async () => {
    const data = randomBytes(10 * KiB);
    const records: DiffRecord[] = [
      { type: 'from', snap: 'a' },
      { type: 'to', snap: 'b' },
      { type: 'size', size: 64 * MiB },
      { type: 'write', offset: 4 * MiB, length: data.length, data },
      { type: 'zero', offset: 8 * MiB, length: 64 * KiB },
    ];
    const chunks = [encodeExportDiff(records)];
    const out: DiffRecord[] = [];
    for await (const r of parseExportDiff((async function* () { for (const c of chunks) for (let i = 0; i < c.length; i += 7) yield c.subarray(i, i + 7); })(), 4 * KiB)) out.push(r);
    const writes = out.filter((r) => r.type === 'write');
    expect(writes.map((w) => w.length)).toEqual([4 * KiB, 4 * KiB, 2 * KiB]);
    expect(Buffer.concat(writes.map((w) => (w as { data: Buffer }).data)).equals(data)).toBe(true);
    expect(out.filter((r) => r.type !== 'write')).toEqual(records.filter((r) => r.type !== 'write'));
  });

  it('rejects a truncated stream', async () => {
    const full = encodeExportDiff([{ type: 'write', offset: 0, length: 100, data: Buffer.alloc(100, 1) }]);
    const err = await (async () => {
      for await (const _ of parseExportDiff((async function* () { yield full.subarray(0, 50); })())) void _;
    })().catch((e) => e);
    expect(err).toBeInstanceOf(StrategyError);
    expect(err.code).toBe('DIFF_TRUNCATED');
  });
});

describe('Ceph RBD disk source', { timeout: 180_000 }, () => {
  it('inventories pools by include/exclude strategy, and removes its private config', async () => {
    rbd('create', '--size', '8M', `volumes/${run}-inv`);
    const ex = await CephClient.open({ ...provider, poolStrategy: 'EXCLUDE', pools: ['volumes'] });
    const dir = (ex as unknown as { dir: string }).dir;
    expect(statSync(join(dir, 'keyring')).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'ceph.conf')).mode & 0o777).toBe(0o600);
    expect(await ex.pools()).toEqual(['rbd']);
    await ex.close();
    expect(existsSync(dir)).toBe(false);
    const inc = await CephClient.open({ ...provider, poolStrategy: 'INCLUDE', pools: ['volumes'] });
    const images = await inc.inventory();
    expect(images.every((i) => i.pool === 'volumes')).toBe(true);
    expect(images.find((i) => i.name === `${run}-inv`)).toMatchObject({ size: 8 * MiB, snapshots: [] });
    await inc.close();
  });

  it('full then incremental are byte-identical, store only changed data and drop over-reported zeros', async () => {
    const img = `${run}-a`;
    const spec = `rbd/${img}`;
    rbd('create', '--size', '64M', spec);
    writeImage(spec, [
      { type: 'write', offset: 0, length: 1 * MiB, data: randomBytes(1 * MiB) },
      { type: 'write', offset: 10 * MiB, length: 3 * MiB, data: randomBytes(3 * MiB) },
    ]);
    const client = await CephClient.open(provider);
    try {
      const full = await RbdDiskSource.open(client, { pool: 'rbd', image: img, backupId: 'b1' });
      expect(full.mode).toBe('full');
      const f1 = join(tmp, 'a-b1.raw');
      const s1 = await applySource(f1, full);
      expect(s1.dataBytes).toBe(4 * MiB);
      expect(await sha256File(f1)).toBe(await exportSha(`${spec}@strongbox-b1`));
      await full.commit();
      await full.close();

      // Day 2: an 8 KiB write that creates a new object (RBD reports it from the object start),
      // a 64 KiB overwrite inside existing data, and 64 KiB of zeros over existing data.
      writeImage(spec, [
        { type: 'write', offset: 40 * MiB + 100 * KiB, length: 8 * KiB, data: randomBytes(8 * KiB) },
        { type: 'write', offset: 128 * KiB, length: 64 * KiB, data: randomBytes(64 * KiB) },
        { type: 'zero', offset: 11 * MiB, length: 64 * KiB },
      ]);
      const inc = await RbdDiskSource.open(client, { pool: 'rbd', image: img, backupId: 'b2', parent: full.checkpoint });
      expect(inc.mode).toBe('incremental');
      expect(inc.fallbackReason).toBeNull();
      const sum = (xs: Array<{ length: number }>) => xs.reduce((a, b) => a + b.length, 0);
      // `rbd diff` reports the new object from its start: 108 KiB for the 8 KiB write.
      const reported = JSON.parse(rbd('diff', '--from-snap', 'strongbox-b1', `${spec}@strongbox-b2`, '--format', 'json'));
      expect(sum(reported)).toBe(108 * KiB + 64 * KiB + 64 * KiB);
      // Exact changes: the zero head of the new object is dropped (the parent had nothing there),
      // the zero write over existing data is kept.
      expect(sum((await inc.changedExtents())!)).toBe(44 * KiB + 64 * KiB + 64 * KiB);
      const f2 = join(tmp, 'a-b2.raw');
      const s2 = await applySource(f2, inc, f1);
      expect(await sha256File(f2)).toBe(await exportSha(`${spec}@strongbox-b2`));
      // The diff reports the new object from its start to the end of the write (108 KiB). Stored:
      // the 64 KiB overwrite + the 44 KiB tail block holding the 8 KiB write; the first 64 KiB
      // block of the new object was zeros and is a hole.
      expect(s2.dataBytes).toBe(64 * KiB + 44 * KiB);
      expect(inc.bytesZeroDetected).toBe(2 * 64 * KiB); // counted by both scans above
      expect(s2.zeroBytes).toBe(64 * KiB);
      await inc.commit();
      await inc.close();
      expect(snapNames(spec)).toEqual(['strongbox-b2']);

      // Not committed (backup failed downstream): the new snapshot goes, the base stays.
      const aborted = await RbdDiskSource.open(client, { pool: 'rbd', image: img, backupId: 'b3', parent: inc.checkpoint });
      await aborted.close();
      expect(snapNames(spec)).toEqual(['strongbox-b2']);
    } finally {
      await client.close();
    }
  });

  it('a deleted base snapshot falls back to a full read with the reason', async () => {
    const img = `${run}-b`;
    const spec = `rbd/${img}`;
    rbd('create', '--size', '16M', spec);
    writeImage(spec, [{ type: 'write', offset: 2 * MiB, length: 512 * KiB, data: randomBytes(512 * KiB) }]);
    const client = await CephClient.open(provider);
    try {
      const first = await RbdDiskSource.open(client, { pool: 'rbd', image: img, backupId: 'c1' });
      for await (const _ of first.extents()) void _;
      await first.commit();
      await first.close();
      rbd('snap', 'rm', `${spec}@strongbox-c1`);
      writeImage(spec, [{ type: 'write', offset: 9 * MiB, length: 64 * KiB, data: randomBytes(64 * KiB) }]);
      const next = await RbdDiskSource.open(client, { pool: 'rbd', image: img, backupId: 'c2', parent: first.checkpoint });
      expect(next.mode).toBe('full');
      expect(next.fallbackReason).toMatch(/base snapshot rbd\/.*@strongbox-c1 no longer exists/);
      const f = join(tmp, 'b-c2.raw');
      await applySource(f, next);
      expect(await sha256File(f)).toBe(await exportSha(`${spec}@strongbox-c2`));
      await next.commit();
      await next.close();
    } finally {
      await client.close();
    }
  });

  it('a missing image is a clean typed error', async () => {
    const client = await CephClient.open(provider);
    const err = await RbdDiskSource.open(client, { pool: 'rbd', image: `${run}-nope`, backupId: 'x' }).catch((e) => e);
    await client.close();
    expect(err).toBeInstanceOf(StrategyError);
    expect(err.code).toBe('IMAGE_NOT_FOUND');
  });

  it('feeds the repository: full + incremental through runBackup restore byte-identical', async () => {
    const img = `${run}-repo`;
    const spec = `rbd/${img}`;
    rbd('create', '--size', '24M', spec);
    writeImage(spec, [{ type: 'write', offset: 1 * MiB, length: 3 * MiB, data: randomBytes(3 * MiB) }]);
    const repo = await newRepository(mkdtempSync(join(tmpdir(), 'sb-rbd-repo-')));
    const client = await CephClient.open(provider);
    try {
      const full = await RbdDiskSource.open(client, { pool: 'rbd', image: img, backupId: 'r1' });
      const r1 = await runBackup(repo, [await toDiskInput(full)], {});
      const ref1 = await exportSha(`${spec}@strongbox-r1`);
      await full.commit();
      await full.close();
      writeImage(spec, [{ type: 'write', offset: 20 * MiB, length: 64 * KiB, data: randomBytes(64 * KiB) }]);
      const inc = await RbdDiskSource.open(client, { pool: 'rbd', image: img, backupId: 'r2', parent: full.checkpoint });
      const input = await toDiskInput(inc);
      expect(input.changedExtents).toEqual([{ offset: 20 * MiB, length: 64 * KiB }]);
      const readBefore = inc.bytesRead;
      const r2 = await runBackup(repo, [input], { parent: r1.id });
      expect(inc.bytesRead - readBefore).toBeLessThanOrEqual(4 * MiB); // one chunk, not the disk
      await inc.commit();
      await inc.close();
      const ref2 = await exportSha(`${spec}@strongbox-r2`);
      for (const [id, ref] of [[r1.id, ref1], [r2.id, ref2]]) {
        const out = join(tmp, `${id}.restored`);
        await runRestore(repo, id, 0, { kind: 'file', path: out }, {});
        expect(await sha256File(out)).toBe(ref);
      }
    } finally {
      await client.close();
      await repo.close();
    }
  });
});
