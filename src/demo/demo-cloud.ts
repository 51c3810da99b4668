// The demo cloud: the simulator with its demo seed, on a port. `startDemoCloud` is what
// `serve --demo` (and the `demo-cloud` command) call; it returns the Keystone URL and the
// credentials to register the cloud with.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { Simulator, type SimulatorOptions } from './simulator/simulator.ts';
import { seedSimulator, type SeedInfo, type SeedOptions } from './simulator/seed.ts';

export type DemoCloud = {
  simulator: Simulator;
  keystoneUrl: string;
  region: string;
  seed: SeedInfo;
  close(): Promise<void>;
};

export async function startDemoCloud(opts: Partial<SimulatorOptions> & { seed?: SeedOptions } = {}): Promise<DemoCloud> {
  const dataDir = opts.dataDir ?? path.resolve('data', 'demo-cloud');
  mkdirSync(dataDir, { recursive: true });
  // Demo volumes stay small: one Cinder "GiB" is 32 MiB of (sparse) file unless told otherwise.
  const simulator = new Simulator({ gibBytes: 32 << 20, ...opts, dataDir });
  const seed = await seedSimulator(simulator, opts.seed);
  await simulator.listen();
  return { simulator, keystoneUrl: simulator.keystoneUrl, region: simulator.regions[0]!, seed, close: () => simulator.close() };
}

/** `strongbox demo-cloud [--port N] [--data DIR]`: the simulator alone, until interrupted. */
export async function run(args: string[]): Promise<number> {
  const arg = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const cloud = await startDemoCloud({
    port: Number(arg('--port') ?? 5050),
    host: arg('--host') ?? '127.0.0.1',
    dataDir: arg('--data') ? path.resolve(arg('--data')!) : undefined,
    gibBytes: arg('--gib-bytes') ? Number(arg('--gib-bytes')) : undefined,
  });
  const { admin, lab2 } = cloud.seed;
  process.stdout.write([
    `OpenStack simulator (demo cloud) listening on ${cloud.simulator.url}`,
    `KEYSTONE_URL=${cloud.keystoneUrl}`,
    `REGION=${cloud.region} (also: ${cloud.simulator.regions.slice(1).join(', ')})`,
    `ADMIN_DOMAIN=${admin.domain} ADMIN_USER=${admin.username} ADMIN_PASSWORD=${admin.password} ADMIN_PROJECT=${admin.project}`,
    `LAB2_DOMAIN=${lab2.domain} LAB2_USER=${lab2.username} LAB2_PASSWORD=${lab2.password} LAB2_PROJECT=${lab2.project}`,
    `PROXY_SERVER_ID=${cloud.seed.proxyServerId}`,
    `Volume files under ${cloud.simulator.files.mountPointBase} (1 GiB of Cinder size = ${cloud.simulator.gibBytes} bytes of file)`,
    '',
  ].join('\n'));
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await cloud.close();
  return 0;
}
