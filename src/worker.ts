// `strongbox worker [--node-configuration NAME] [--concurrency N]`: a data mover alone, on any
// machine that reaches the database.
import { parseArgs } from 'node:util';
import { loadConfig } from './config.ts';
import { startEngine } from './engine/engine.ts';
import { startServices } from './services.ts';
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
  process.stdout.write(`data mover ${engine.dataMover!.name} running${values['node-configuration'] ? ` for ${values['node-configuration']}` : ''}\n`);
  const stop = async () => {
    await engine.stop();
    await services.close();
    await tracing?.shutdown();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  await new Promise(() => {});
}
