// Dedup-aware attribution end to end: real backups of overlapping disks into a real repository
// in a folder (the destination's own, opened as the engine opens it), Backup rows naming them,
// then the attribution read back from the repository — through the billing function, GraphQL
// (roles, tenant scoping) and the CLI.
//
// Disks are made of 64 KiB chunks of random bytes, which zstd cannot shrink, so every stored
// blob is exactly chunk + 28 bytes (12-byte nonce + 16-byte tag, docs/repository-format.md):
// the expected shares follow from the disk layouts alone.
import { encodeGlobalID } from '@pothos/plugin-relay';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { EntityManager } from '@mikro-orm/postgresql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { destinationAttribution } from '../../billing/destination-attribution.ts';
import { Backup, BackupDestination, Instance, Project } from '../../src/db/entities/index.ts';
import { systemFork } from '../../src/db/orm.ts';
import { openDestinationRepository } from '../../src/engine/backup/destination-repository.ts';
import { FileDiskSource } from '../../src/engine/repository/index.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { seedInventory, type Inventory } from './seed.ts';

const CS = 64 << 10;
const U = BigInt(CS + 28); // stored bytes of one incompressible chunk
const ALL = { projectIds: null };

let t: TestApp;
let inv: Inventory;
let dir: string;
let dest: BackupDestination;
let em: EntityManager;
const rows: Record<string, Backup> = {};

const chunks = (n: number) => Array.from({ length: n }, () => randomBytes(CS));

/** Backs up one disk made of `parts` for `instance` into the destination and records its Backup row. */
async function backup(name: string, instance: Instance, parts: Buffer[]): Promise<void> {
  const file = path.join(dir, `${name}.raw`);
  writeFileSync(file, Buffer.concat(parts));
  const repo = await openDestinationRepository(dest, t.services.secrets, { createIfMissing: true, workers: 1 });
  try {
    const source = await FileDiskSource.open(file);
    const result = await repo.backup([{ name: 'vda', source }], { tag: instance.id });
    await source.close?.();
    const b = em.create(Backup, {
      cloud: inv.cloud, project: em.getReference(Project, instance.project.id), instance: em.getReference(Instance, instance.id),
      destination: dest, type: 'FULL', state: 'AVAILABLE', repositoryBackupId: result.id, completedAt: new Date(),
    });
    await em.flush();
    rows[name] = b;
  } finally {
    await repo.close();
  }
}

beforeAll(async () => {
  t = await startTestApp();
  inv = await seedInventory(t.services.orm);
  em = systemFork(t.services.orm) as EntityManager;
  dir = mkdtempSync(path.join(os.tmpdir(), 'sb-attribution-'));
  dest = em.create(BackupDestination, { name: 'dedup', kind: 'FILE_SYSTEM', url: `file://${dir}/repo`, chunkSizeBytes: CS });
  await em.flush();
  // Instances 0 and 3 are in project 0, instance 1 in project 1 (seed: instance i → project i % 3).
  const [vm0, vm1, , vm3] = inv.instances;
  const base = chunks(4);
  const a = chunks(3);
  const b = chunks(2);
  const c = chunks(1);
  const a2 = chunks(1);
  await backup('vm0-day1', vm0!, [...base, ...a]);
  // vm0 again: one chunk rewritten (new, only vm0's) and a zero chunk (never stored).
  await backup('vm0-day2', vm0!, [...base, a2[0]!, a[1]!, a[2]!, Buffer.alloc(CS)]);
  await backup('vm1', vm1!, [...base, ...b]);
  await backup('vm3', vm3!, [base[0]!, base[1]!, ...c]);
});
afterAll(async () => {
  await t?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('attribution of a real deduplicating destination', () => {
  it('charges unique chunks to their only instance and splits shared ones 1/k, summing to the stored chunk bytes', async () => {
    const [vm0, vm1, , vm3] = inv.instances;
    const r = await destinationAttribution(em, t.services.secrets, { id: dest.id }, ALL);
    expect(r.backups).toBe(4);
    expect(r.skipped).toEqual([]);
    // Distinct chunks: base 4 + a 3 + a2 1 + b 2 + c 1 = 11, each stored as one blob of U bytes.
    expect(r.chunks).toBe(11);
    expect(r.storedTotal).toBe(11n * U);
    // The repository's own account of what each backup added agrees: Σ new stored bytes.
    const repo = await openDestinationRepository(dest, t.services.secrets, { workers: 1 });
    const records = await repo.list();
    await repo.close();
    expect(records.reduce((s, x) => s + x.disks.reduce((d, disk) => d + BigInt(disk.storedBytes), 0n), 0n)).toBe(r.storedTotal);

    const byId = new Map(r.instances.map((i) => [i.id, i]));
    // vm0: a (3) + a2 (1) alone; base0/1 shared by 3, base2/3 by 2 → 4U + 2U/3 + 2U/2.
    expect(byId.get(vm0!.id)!.uniqueBytes).toBe(4n * U);
    expect(byId.get(vm1!.id)!.uniqueBytes).toBe(2n * U);
    expect(byId.get(vm3!.id)!.uniqueBytes).toBe(1n * U);
    const exact = (x: { exact: { numerator: bigint; denominator: bigint } }) => [x.exact.numerator, x.exact.denominator];
    const frac = (n: bigint, d: bigint) => { const g = gcd(n, d); return [n / g, d / g]; };
    expect(exact(byId.get(vm0!.id)!)).toEqual(frac(17n * U, 3n)); // 5U + 2U/3
    expect(exact(byId.get(vm1!.id)!)).toEqual(frac(11n * U, 3n)); // 3U + 2U/3
    expect(exact(byId.get(vm3!.id)!)).toEqual(frac(5n * U, 3n)); //  U + 2U/3
    expect(r.instances.reduce((s, i) => s + i.totalBytes, 0n)).toBe(r.storedTotal);
    // Projects: project 0 (vm0 + vm3) alone holds a, a2 and c; base0/1 it shares with project 1.
    const p0 = r.projects.find((p) => p.id === inv.projects[0]!.id)!;
    expect(p0.uniqueBytes).toBe(5n * U);
    expect(exact(p0)).toEqual(frac(22n * U, 3n)); // 6U + 4U/3
    expect(r.projects.reduce((s, p) => s + p.totalBytes, 0n)).toBe(r.storedTotal);
    expect(r.projects.map((p) => p.id).sort()).toEqual([inv.projects[0]!.id, inv.projects[1]!.id].sort());
  });

  it('counts only AVAILABLE backups: a deleted backup’s chunks no longer count to anyone', async () => {
    const [, vm1] = inv.instances;
    await em.nativeUpdate(Backup, { id: rows.vm1!.id }, { state: 'DELETED' });
    try {
      const r = await destinationAttribution(em, t.services.secrets, { id: dest.id }, ALL);
      expect(r.backups).toBe(3);
      expect(r.storedTotal).toBe(9n * U); // b's 2 chunks are garbage until a prune
      expect(r.instances.map((i) => i.id)).not.toContain(vm1!.id);
      expect(r.instances.reduce((s, i) => s + i.totalBytes, 0n)).toBe(r.storedTotal);
    } finally {
      await em.nativeUpdate(Backup, { id: rows.vm1!.id }, { state: 'AVAILABLE' });
    }
  });

  it('answers over GraphQL: BILLING sees every row; a TENANT only its own, with shares computed over everyone', async () => {
    const Q = `query($input: AttributionInput!) { attribution(input: $input) { storedTotal chunks backups skippedBackups
      destination { name } instances { key { id name } project { name } uniqueBytes sharedBytes totalBytes exactNumerator exactDenominator }
      projects { key { id name } uniqueBytes totalBytes } } }`;
    const input = { destinationId: encodeGlobalID('BackupDestination', dest.id) };
    const billing = await t.login('BILLING');
    const all = await t.gql(billing, Q, { input });
    expect(all.errors).toBeUndefined();
    const a = all.data.attribution;
    expect(BigInt(a.storedTotal)).toBe(11n * U);
    expect(a.instances).toHaveLength(3);
    expect(a.instances.reduce((s: bigint, i: any) => s + BigInt(i.totalBytes), 0n)).toBe(11n * U);
    expect(a.destination.name).toBe('dedup');

    const tenant1 = await t.login('TENANT', [inv.projects[1]!.id]);
    const own = await t.gql(tenant1, Q, { input });
    expect(own.errors).toBeUndefined();
    const o = own.data.attribution;
    expect(o.storedTotal).toBe(a.storedTotal);
    expect(o.instances.map((i: any) => i.key.name)).toEqual(['vm-1']);
    expect(o.instances[0]).toEqual(a.instances.find((i: any) => i.key.name === 'vm-1'));
    expect(o.projects.map((p: any) => p.key.name)).toEqual([inv.projects[1]!.name]);
    for (const other of ['vm-0', 'vm-3', inv.projects[0]!.name]) expect(JSON.stringify(own)).not.toContain(other);

    // BILLING may narrow the rows to chosen projects; the figures stay those of the whole destination.
    const some = await t.gql(billing, Q, { input: { ...input, projectIds: [encodeGlobalID('Project', inv.projects[0]!.id)] } });
    expect(some.data.attribution.instances.map((i: any) => i.key.name).sort()).toEqual(['vm-0', 'vm-3']);
    expect(some.data.attribution.storedTotal).toBe(a.storedTotal);

    const missing = await t.gql(billing, Q, { input: { destinationId: encodeGlobalID('BackupDestination', '00000000-0000-4000-8000-000000000000') } });
    expect(missing.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    const operator = await t.login('OPERATOR');
    expect((await t.gql(operator, Q, { input })).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });
});

describe('strongbox billing attribution', () => {
  it('prints the same attribution as JSON for a destination named on the command line', async () => {
    const env = { ...process.env, DATABASE_URL: t.databaseUrl, STRONGBOX_DATA_DIR: t.services.config.dataDir, STRONGBOX_MASTER_KEY: t.services.config.masterKey! };
    const run = (args: string[]) => promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/main.ts', 'billing', ...args], { env, cwd: path.resolve(import.meta.dirname, '../..') });
    const out = JSON.parse((await run(['attribution', '--destination', 'dedup'])).stdout);
    const r = await destinationAttribution(em, t.services.secrets, { id: dest.id }, ALL);
    expect(out.storedTotal).toBe(String(r.storedTotal));
    expect(out.instances.map((i: any) => [i.id, i.totalBytes, i.uniqueBytes])).toEqual(r.instances.map((i) => [i.id, String(i.totalBytes), String(i.uniqueBytes)]));
    const missing = await run(['attribution', '--destination', 'no-such']).catch((e) => e);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('no backup destination "no-such"');
  }, 60_000);
});

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}
