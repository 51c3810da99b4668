// Inventory sync benchmark: 10,000 servers (one volume each) in the simulator, synced into
// PostgreSQL (DATABASE_URL, or an embedded one). Reports the first (all inserts) and second
// (nothing changed) runs. Target: < 30 s for 10,000 instances.
//   npm run bench:inventory [-- --servers N]
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { Cloud, CloudAuthDomain } from '../src/db/entities/index.ts';
import { startEmbeddedPostgres } from '../src/db/embedded-postgres.ts';
import { openOrm, systemFork } from '../src/db/orm.ts';
import { SecretBox } from '../src/db/secrets.ts';
import { Simulator } from '../src/demo/simulator/simulator.ts';
import { seedSimulator } from '../src/demo/simulator/seed.ts';
import { syncInventory } from '../src/engine/inventory/sync.ts';

const i = process.argv.indexOf('--servers');
const servers = i > 0 ? Number(process.argv[i + 1]) : 10_000;
const dir = mkdtempSync(path.join(os.tmpdir(), 'sb-bench-inventory-'));
chmodSync(dir, 0o755); // embedded PostgreSQL runs as the postgres user
const cleanups: (() => Promise<void>)[] = [async () => rmSync(dir, { recursive: true, force: true })];

try {
  let adminUrl = process.env.DATABASE_URL;
  if (!adminUrl) {
    const embedded = await startEmbeddedPostgres(path.join(dir, 'pg'), { ephemeral: true });
    cleanups.unshift(() => embedded.stop());
    adminUrl = embedded.url;
  }
  const dbName = `sb_bench_inventory_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`create database ${dbName}`);
  cleanups.unshift(async () => {
    await admin.query(`drop database if exists ${dbName} with (force)`);
    await admin.end();
  });
  const url = new URL(adminUrl);
  url.pathname = `/${dbName}`;
  const orm = await openOrm(url.toString());
  cleanups.unshift(() => orm.close());

  const sim = new Simulator({ dataDir: path.join(dir, 'sim'), delayMs: 10 });
  let t0 = performance.now();
  const seed = await seedSimulator(sim, { extraServers: servers - 5, sampleDataMiB: 0 });
  await sim.listen();
  cleanups.unshift(() => sim.close());
  console.log(`simulator seeded with ${sim.state.liveServers().length} servers, ${sim.state.volumes.size} volumes in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  const secrets = new SecretBox(randomBytes(32));
  const em = systemFork(orm);
  const cloud = em.create(Cloud, { name: 'bench', keystoneUrl: sim.keystoneUrl, region: 'RegionOne' });
  em.create(CloudAuthDomain, { cloud, name: 'Default', username: seed.admin.username, password: secrets.seal(seed.admin.password), defaultProject: seed.admin.project });
  em.create(CloudAuthDomain, { cloud, name: 'lab2', username: seed.lab2.username, password: secrets.seal(seed.lab2.password), defaultProject: seed.lab2.project });
  await em.flush();

  for (const label of ['first sync (inserts)', 'second sync (no change)']) {
    t0 = performance.now();
    const steps: string[] = [];
    let last = t0;
    const r = await syncInventory({ orm, secrets }, cloud.id, {
      onProgress: (p) => {
        const now = performance.now();
        steps.push(`${p.step}@${((now - last) / 1000).toFixed(2)}s`);
        last = now;
      },
    });
    const s = (performance.now() - t0) / 1000;
    console.log(`  steps (time since the previous step): ${steps.join(' ')}`);
    console.log(`${label}: ${r.instances} instances, ${r.volumes} volumes, ${r.changed} rows changed in ${s.toFixed(2)} s (${Math.round(r.instances / s)} instances/s)`);
  }
} finally {
  for (const c of cleanups) await c().catch((e) => console.error(e));
}
