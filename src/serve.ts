// `strongbox serve` (the default of `npm start`): the API on one port.
// `serve --demo` also starts the OpenStack simulator as a demo cloud and registers it (see
// src/demo/demo-setup.ts); `--demo-port N` fixes the simulator's port (default: a free one).
import path from 'node:path';
import { loadConfig } from './config.ts';
import { startEngine } from './engine/engine.ts';
import { listen } from './server.ts';
import { startServices } from './services.ts';
import { onShutdownSignal, type ShutdownStep } from './shutdown.ts';
import { configureLogger } from './observability/logger.ts';
import { startTracing } from './observability/tracing.ts';

export async function run(args: string[]) {
  // --api-only: no data mover and no scheduler here (they run in `worker` processes).
  const apiOnly = args.includes('--api-only');
  const demo = args.includes('--demo');
  const config = loadConfig();
  configureLogger(config);
  const tracing = startTracing(config);
  const services = await startServices(config);
  const demoCloud = demo ? await startDemo(args, config.dataDir) : undefined;
  const setup = demoCloud ? await (await import('./demo/demo-setup.ts')).ensureDemoSetup(services, demoCloud) : undefined;
  const server = await listen(services, config.host, config.port);
  // In the demo, tasks of the demo cloud go to its node configuration (its proxy VM).
  const dataMover = setup ? { nodeConfiguration: (await import('./demo/demo-setup.ts')).DEMO_NODE_CONFIGURATION } : {};
  const engine = apiOnly ? undefined : await startEngine(services, { scheduler: true, dataMover });
  process.stdout.write(`Strongbox API at ${server.url} (GraphiQL in a browser, graphql-ws on the same path)\n`);
  if (demoCloud && setup) process.stdout.write((await import('./demo/banner.ts')).demoBanner(server.url, demoCloud, setup));
  const graceMs = config.shutdownGraceSeconds * 1000;
  onShutdownSignal(services, graceMs, [
    // Both at once, so the whole stays within one grace period.
    ['API and data mover stopped', () => Promise.all([server.close(graceMs), engine?.stop(graceMs)])],
    ...(demoCloud ? [['demo cloud stopped', () => demoCloud.close()] as ShutdownStep] : []),
    ['database closed', () => services.close()],
    ['traces flushed', async () => tracing?.shutdown()],
  ]);
  await new Promise(() => {});
}

async function startDemo(args: string[], dataDir: string) {
  const i = args.indexOf('--demo-port');
  const port = i >= 0 ? Number(args[i + 1]) : 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--demo-port: not a port: ${JSON.stringify(args[i + 1])}`);
  const { startDemoCloud } = await import('./demo/demo-cloud.ts');
  // Fixed IDs: the same cloud on every start, so re-syncing finds the same instances.
  return startDemoCloud({ port, host: '127.0.0.1', dataDir: path.join(dataDir, 'demo-cloud'), seed: { idSeed: 'strongbox-demo' } });
}
