// `strongbox worker [--node-configuration NAME] [--concurrency N]`: a data mover alone, on any
// machine that reaches the database.
import { parseArgs } from 'node:util';
import { loadConfig } from './config.ts';
import { startEngine } from './engine/engine.ts';
import { listenHealth } from './http/health.ts';
import { startServices } from './services.ts';
import { onShutdownSignal } from './shutdown.ts';
import { configureLogger } from './observability/logger.ts';
import { startTracing } from './observability/tracing.ts';

export async function run(args: string[]) {
  const { values } = parseArgs({
    args,
    options: { 'node-configuration': { type: 'string' }, concurrency: { type: 'string' } },
  });
  const concurrency = values.concurrency === undefined ? undefined : Number(values.concurrency);
  if (concurrency !== undefined && !(Number.isInteger(concurrency) && concurrency >= 1 && concurrency <= 64)) {
    process.stderr.write('strongbox worker: --concurrency must be a whole number from 1 to 64\n');
    return 2;
  }
  const config = loadConfig();
  configureLogger(config);
  const tracing = startTracing(config);
  const services = await startServices(config);
  const engine = await startEngine(services, {
    dataMover: { nodeConfiguration: values['node-configuration'], concurrency },
  });
  // /metrics, /healthz, /readyz for Prometheus and orchestrators: only when a port is configured.
  const health = config.workerMetricsPort === undefined ? undefined : await listenHealth(services, config.host, config.workerMetricsPort);
  process.stdout.write(`data mover ${engine.dataMover!.name} running${values['node-configuration'] ? ` for ${values['node-configuration']}` : ''}\n`);
  if (health) process.stdout.write(`metrics and health at ${health.url}/metrics, /healthz, /readyz\n`);
  const graceMs = config.shutdownGraceSeconds * 1000;
  onShutdownSignal(services, graceMs, [
    ['data mover stopped', () => engine.stop(graceMs)],
    ['health listener closed', async () => health?.close()],
    ['database closed', () => services.close()],
    ['traces flushed', async () => tracing?.shutdown()],
  ]);
  await new Promise(() => {});
}
