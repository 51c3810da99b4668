// A fresh OpenStack simulator per test file, in a temporary folder, with small volumes.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Simulator, type SimulatorOptions } from '../../src/demo/simulator/simulator.ts';
import { seedSimulator, type SeedInfo, type SeedOptions } from '../../src/demo/simulator/seed.ts';
import { OpenStackCloud, type CloudConnectionOptions } from '../../src/openstack/index.ts';

export type TestSim = { sim: Simulator; seed: SeedInfo; dir: string; close(): Promise<void> };

export async function startSimulator(opts: Partial<SimulatorOptions> & { seed?: SeedOptions } = {}): Promise<TestSim> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sb-sim-'));
  const sim = new Simulator({ dataDir: path.join(dir, 'data'), delayMs: 20, gibBytes: 4 << 20, ...opts });
  const seed = await seedSimulator(sim, { sampleDataMiB: 1, ...opts.seed });
  await sim.listen();
  return {
    sim, seed, dir,
    async close() {
      await sim.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A connection with the admin (Default) and lab2 credential sets. */
export function connect(t: TestSim, o: Partial<CloudConnectionOptions> = {}): OpenStackCloud {
  return new OpenStackCloud({
    keystoneUrl: t.sim.keystoneUrl,
    region: 'RegionOne',
    iface: 'public',
    domainScoped: false,
    http: { timeoutMs: 5000, retries: 2, backoffMs: 20 },
    authDomains: [
      { name: 'Default', username: t.seed.admin.username, password: t.seed.admin.password, defaultProject: t.seed.admin.project },
      { name: 'lab2', username: t.seed.lab2.username, password: t.seed.lab2.password, defaultProject: t.seed.lab2.project },
    ],
    ...o,
  });
}
