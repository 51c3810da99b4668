// The demo cloud as `serve --demo` and `strongbox demo-cloud` start it: seeded, with sample
// data on the volumes, reachable with the printed credentials.
import { closeSync, mkdtempSync, openSync, readSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startDemoCloud, type DemoCloud } from '../../src/demo/demo-cloud.ts';
import { OpenStackCloud } from '../../src/openstack/index.ts';

let demo: DemoCloud;
let dir: string;
beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'sb-demo-'));
  demo = await startDemoCloud({ dataDir: dir, port: 0 });
});
afterAll(async () => {
  await demo?.close();
  rmSync(dir, { recursive: true, force: true });
});

it('serves the demo seed: projects in two domains, instances with volumes holding sample data', async () => {
  const cloud = new OpenStackCloud({
    keystoneUrl: demo.keystoneUrl, region: demo.region, iface: 'public', domainScoped: false,
    authDomains: [{ name: demo.seed.admin.domain, username: demo.seed.admin.username, password: demo.seed.admin.password, defaultProject: demo.seed.admin.project }],
  });
  const { nova, cinder } = cloud.clients(cloud.defaultSession());
  const servers = await nova.listServers({ allTenants: true });
  expect(servers.map((s) => s.name).sort()).toEqual(['app-a1', 'app-b1', 'db-1', 'sb-backup-proxy', 'web-1']);
  const vols = await cinder.listVolumes({ allTenants: true });
  expect(vols.every((v) => v.size === 1 && v.status === 'in-use')).toBe(true);
  const file = Buffer.alloc(9 << 20);
  const fd = openSync(demo.simulator.files.volumePath(demo.seed.volumes['web-1-root']!), 'r');
  readSync(fd, file, 0, file.length, 0);
  closeSync(fd);
  expect(file.subarray(0, 19).toString()).toBe('STRONGBOX-SIM-FS v1');
  expect(file.subarray(1 << 20, (1 << 20) + 200).toString()).toContain('the quick brown fox');
  expect(file.subarray(8 << 20, 9 << 20).some((b) => b !== 0)).toBe(true); // random blocks
});
