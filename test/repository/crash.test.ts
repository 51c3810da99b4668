// kill -9 of the real CLI in the middle of a backup and of a prune: the destination must still
// verify, and the next prune must clean every leftover.
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileDiskSource } from '../../src/engine/repository/repository.ts';
import { runCli, spawnCli, until } from './cli-helpers.ts';
import { MiB, listObjects, makeImage, newRepository, openRepository, sha256File, tempDir, textBytes } from './helpers.ts';

async function verifyClean(dir: string) {
  const repo = await openRepository(dir);
  try {
    return await repo.verify({ readData: true });
  } finally {
    await repo.close();
  }
}

/** SIGKILL; true when the process was still running (false: it had already finished). */
async function killed(child: ReturnType<typeof spawnCli>): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return false;
  const closed = new Promise((r) => child.once('close', r));
  child.kill('SIGKILL');
  await closed;
  return child.signalCode === 'SIGKILL';
}

describe('kill -9 during a backup', () => {
  let dir: string;
  let disk: string;
  beforeAll(async () => {
    dir = await tempDir();
    disk = path.join(dir, 'disk.raw');
    await makeImage(disk, 48 * MiB, [
      { offset: 0, length: 40 * MiB, kind: 'random' },
      { offset: 40 * MiB, length: 8 * MiB, kind: 'text' },
    ]);
    const repo = await newRepository(dir, { packSize: 2 * MiB }); // many packs: many moments to die in
    await repo.close();
  });
  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  for (const packsBeforeKill of [1, 8]) {
    it(`killed after ${packsBeforeKill} pack(s): no backup appears, verify passes, prune cleans up`, async () => {
      const root = path.join(dir, 'repo');
      const child = spawnCli(['backup', '--destination', `file://${root}`, '--disk', disk]);
      let exited = false;
      child.on('close', () => (exited = true));
      await until(async () => exited || (await listObjects(dir, 'data')).length >= packsBeforeKill, 120_000, 5);
      expect(exited).toBe(false);
      expect(await killed(child)).toBe(true); // killed mid-way

      expect((await listObjects(dir, 'backups')).length).toBe(0);
      expect((await listObjects(dir, 'locks')).length).toBe(1); // the dead process's lock
      const report = await verifyClean(dir);
      expect(report.errors).toEqual([]);
      expect(report.warnings.length).toBeGreaterThan(0); // its packs, unindexed

      const p = await runCli(['prune', '--destination', `file://${root}`, '--keep-last', '5']);
      expect(p.code).toBe(0);
      expect(JSON.parse(p.stdout).deletedPacks).toBeGreaterThan(0);
      const after = await verifyClean(dir);
      expect(after).toMatchObject({ ok: true, warnings: [], packs: 0 });
      expect(await listObjects(dir)).toEqual(['config', expect.stringMatching(/^keys\//)]);
    });
  }

  it('the next backup after a crash completes and restores byte-identical', async () => {
    const root = path.join(dir, 'repo');
    const r = await runCli(['backup', '--destination', `file://${root}`, '--disk', disk]);
    expect(r.code).toBe(0);
    const { id } = JSON.parse(r.stdout);
    const out = path.join(dir, 'out.raw');
    expect((await runCli(['restore', '--destination', `file://${root}`, '--backup', id, '--disk', '0', '--to', out])).code).toBe(0);
    expect(await sha256File(out)).toBe(await sha256File(disk));
  });
});

describe('kill -9 during a prune', () => {
  let dir: string;
  let template: string;
  let keptId: string;
  let b: string;
  const kills: boolean[] = [];

  beforeAll(async () => {
    dir = await tempDir();
    template = path.join(dir, 'template');
    await fs.mkdir(template);
    const a = path.join(dir, 'a.raw');
    b = path.join(dir, 'b.raw');
    await makeImage(a, 48 * MiB, [{ offset: 0, length: 48 * MiB, kind: 'random' }]);
    // b shares every other chunk with a: prune must delete some packs and repack the others.
    await fs.copyFile(a, b);
    const fh = await fs.open(b, 'r+');
    for (let i = 0; i < 48; i += 2) await fh.write(textBytes(MiB), 0, MiB, i * MiB);
    await fh.close();
    const repo = await newRepository(template, { packSize: 2 * MiB });
    for (const f of [a, b]) {
      const src = await FileDiskSource.open(f);
      keptId = (await repo.backup([{ name: 'vda', source: src }])).id;
      await src.close();
    }
    await repo.close();
  });
  afterAll(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  for (const delayMs of [0, 40, 120, 250, 500]) {
    it(`killed ${delayMs} ms after taking its lock: verify passes, the next prune finishes the job`, async () => {
      const work = path.join(dir, `run-${delayMs}`);
      await fs.cp(template, work, { recursive: true });
      const root = path.join(work, 'repo');
      const child = spawnCli(['prune', '--destination', `file://${root}`, '--keep-last', '1']);
      let exited = false;
      child.on('close', () => (exited = true));
      await until(async () => exited || (await listObjects(work, 'locks')).length > 0, 120_000, 2);
      await new Promise((r) => setTimeout(r, delayMs));
      kills.push(await killed(child));

      const report = await verifyClean(work);
      expect(report.errors).toEqual([]);
      const p = await runCli(['prune', '--destination', `file://${root}`, '--keep-last', '1']);
      expect(p.code).toBe(0);
      const after = await verifyClean(work);
      expect(after).toMatchObject({ ok: true, warnings: [], backups: 1 });
      const repo = await openRepository(work);
      expect((await repo.list()).map((x) => x.id)).toEqual([keptId]);
      const out = path.join(work, 'b.restored');
      await repo.restore(keptId, 0, { kind: 'file', path: out });
      await repo.close();
      expect(await sha256File(out)).toBe(await sha256File(b));
      expect((await listObjects(work, 'locks')).length).toBe(0);
    });
  }

  it('at least some of those kills landed while the prune was running', () => {
    expect(kills.filter(Boolean).length).toBeGreaterThanOrEqual(3);
  });
});
