// `strongbox serve` (the default of `npm start`): the API on one port.
import { loadConfig } from './config.ts';
import { startEngine } from './engine/engine.ts';
import { listen } from './server.ts';
import { startServices } from './services.ts';

export async function run(_args: string[]) {
  const config = loadConfig();
  const services = await startServices(config);
  const server = await listen(services, config.host, config.port);
  const engine = await startEngine(services, { scheduler: true, dataMover: {}, hooks: { publish: () => {} } });
  process.stdout.write(`Strongbox API at ${server.url} (GraphiQL in a browser, graphql-ws on the same path)\n`);
  const stop = async () => {
    await server.close();
    await engine.stop();
    await services.close();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  await new Promise(() => {});
}
