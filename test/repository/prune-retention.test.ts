// `strongbox repo prune` with the full retention rules: backups taken at chosen times (the
// repository's `time` option), then the real CLI — dry run first, then the prune — and exactly the
// expected backups remain, verify passes, and every kept backup restores byte-identical.
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileDiskSource, type Repository } from '../../src/engine/repository/repository.ts';
import { runCli } from './cli-helpers.ts';
import { MiB, makeImage, newRepository, openRepository, sha256File, tempDir } from './helpers.ts';

type Taken = { name: string; id: string; image: string };

async function takeBackups(dir: string, repo: Repository, plan: { name: string; tag: string; time: Date }[]): Promise<Taken[]> {
  const out: Taken[] = [];
  for (const p of plan) {
    // Each image: a shared random part and a part of its own, so prune frees some packs, not all.
    const image = path.join(dir, `${p.name}.raw`);
    if (out.length === 0) await makeImage(image, 2 * MiB + 4321, [{ offset: 0, length: MiB, kind: 'random' }]);
    else await fs.copyFile(out[0]!.image, image);
    await makeImage(`${image}.own`, MiB, [{ offset: 0, length: MiB, kind: 'random' }]);
    const fh = await fs.open(image, 'r+');
    await fh.write(await fs.readFile(`${image}.own`), 0, MiB, MiB);
    await fh.close();
    const src = await FileDiskSource.open(image);
    const r = await repo.backup([{ name: 'vda', source: src }], { tag: p.tag, time: p.time });
    await src.close();
    out.push({ name: p.name, id: r.id, image });
  }
  return out;
}

describe('repo prune by retention rules', () => {
  let dir: string;
  const dest = () => `file://${path.join(dir, 'repo')}`;
  beforeAll(async () => {
    dir = await tempDir();
  });
  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  // Listing and restoring through the API (the CLI's are tested elsewhere) keeps this test short.
  async function listIds(): Promise<string[]> {
    const repo = await openRepository(dir);
    try {
      return (await repo.list()).map((r) => r.id);
    } finally {
      await repo.close();
    }
  }

  async function restoreIdentical(kept: Taken[]) {
    const repo = await openRepository(dir);
    try {
      for (const k of kept) {
        const out = path.join(dir, `${k.name}.restored`);
        await repo.restore(k.id, 0, { kind: 'file', path: out });
        expect(await sha256File(out), k.name).toBe(await sha256File(k.image));
        await fs.rm(out);
      }
    } finally {
      await repo.close();
    }
  }

  it('calendar rules per tag: dry run names what would go and changes nothing, prune removes exactly that', async () => {
    const repo = await newRepository(dir, { chunkSize: 256 << 10, packSize: MiB });
    const t = (iso: string) => new Date(iso);
    const taken = await takeBackups(dir, repo, [
      { name: 'v1', tag: 'vm', time: t('2026-09-10T08:00:00Z') },
      { name: 'v2', tag: 'vm', time: t('2026-10-20T08:00:00Z') },
      { name: 'v3', tag: 'vm', time: t('2026-10-31T22:00:00Z') },
      { name: 'v4', tag: 'vm', time: t('2026-11-25T08:00:00Z') },
      { name: 'v5', tag: 'vm', time: t('2026-11-26T08:00:00Z') },
      { name: 'v6', tag: 'vm', time: t('2026-11-26T20:00:00Z') },
      { name: 'd1', tag: 'db', time: t('2026-11-01T00:00:00Z') },
      { name: 'd2', tag: 'db', time: t('2026-11-20T00:00:00Z') },
    ]);
    await repo.close();
    const id = Object.fromEntries(taken.map((x) => [x.name, x.id]));
    const all = await listIds();
    expect(all).toHaveLength(8);
    // vm: daily 2 → v6 (the 26th's newest), v4; monthly 3 → v6, v3 (October's newest), v1.
    // db: daily 2 → d2, d1. Forgotten: v2 and v5.
    const rules = ['--keep-daily', '2', '--keep-monthly', '3'];

    const dry = await runCli(['prune', '--destination', dest(), '--dry-run', ...rules]);
    expect(dry.code, dry.stderr).toBe(0);
    const plan = JSON.parse(dry.stdout);
    expect(plan.dryRun).toBe(true);
    expect(new Set(plan.forgotten)).toEqual(new Set([id.v2, id.v5]));
    expect(new Set(plan.kept)).toEqual(new Set([id.v1, id.v3, id.v4, id.v6, id.d1, id.d2]));
    expect(dry.stderr).toContain(`would forget ${id.v2}`);
    expect(await listIds()).toEqual(all);

    const real = await runCli(['prune', '--destination', dest(), ...rules]);
    expect(real.code, real.stderr).toBe(0);
    const pruned = JSON.parse(real.stdout);
    expect(new Set(pruned.forgotten)).toEqual(new Set([id.v2, id.v5]));
    expect(pruned.deletedPacks + pruned.repackedPacks).toBeGreaterThan(0);
    expect(new Set(await listIds())).toEqual(new Set(plan.kept));

    const verify = await runCli(['verify', '--destination', dest(), '--read-data']);
    expect(verify.code, verify.stderr).toBe(0);
    await restoreIdentical(taken.filter((x) => plan.kept.includes(x.id)));

    // A second prune with the same rules forgets nothing more.
    const again = await runCli(['prune', '--destination', dest(), ...rules]);
    expect(JSON.parse(again.stdout).forgotten).toEqual([]);
  }, 180_000); // seven CLI runs on a loaded machine

  it('--keep-within keeps what is younger than the duration', async () => {
    await fs.rm(path.join(dir, 'repo'), { recursive: true });
    const repo = await newRepository(dir, { chunkSize: 256 << 10, packSize: MiB });
    const ago = (hours: number) => new Date(Date.now() - hours * 3_600_000);
    const taken = await takeBackups(dir, repo, [
      { name: 'w1', tag: 'vm', time: ago(24 * 400) },
      { name: 'w2', tag: 'vm', time: ago(24 * 10) },
      { name: 'w3', tag: 'vm', time: ago(30) },
      { name: 'w4', tag: 'vm', time: ago(1) },
    ]);
    await repo.close();
    const id = Object.fromEntries(taken.map((x) => [x.name, x.id]));
    const r = await runCli(['prune', '--destination', dest(), '--keep-within', '2d']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).forgotten).toEqual([id.w1, id.w2]);
    expect(new Set(await listIds())).toEqual(new Set([id.w3, id.w4]));
    expect((await runCli(['verify', '--destination', dest(), '--read-data'])).code).toBe(0);
    await restoreIdentical(taken.slice(2));
  });

  it('refuses a prune without a rule or with a malformed one, changing nothing', async () => {
    const before = await listIds();
    const none = await runCli(['prune', '--destination', dest()]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/at least one rule/);
    const bad = await runCli(['prune', '--destination', dest(), '--keep-within', '3 days']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--keep-within needs a duration like 1y6m/);
    const neg = await runCli(['prune', '--destination', dest(), '--keep-daily', '-1']);
    expect(neg.code).toBe(2);
    expect(await listIds()).toEqual(before);
  });
});
