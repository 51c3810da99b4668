// What `serve --demo` puts in the catalog, idempotently on every start: the demo cloud (through
// the same `createCloud` the cloudCreate mutation uses), a default FILE_SYSTEM destination under
// the data folder, a demo policy, an ADMIN service account whose credentials go to a 0600 file,
// and an INVENTORY_SYNC task so the demo instances appear.
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { EntityManager } from '@mikro-orm/postgresql';
import { createServiceAccount, rotateSecret, type Credentials } from '../auth/service-accounts.ts';
import { AuditEntry, BackupDestination, Cloud, CloudAuthDomain, Policy, ServiceAccount, Task, NodeConfiguration } from '../db/entities/index.ts';
import { systemFork } from '../db/orm.ts';
import { createCloud, setAuthDomains, type AuthDomainInput } from '../engine/clouds.ts';
import { createTask } from '../engine/tasks/tasks.ts';
import type { Services } from '../services.ts';
import type { DemoCloud } from './demo-cloud.ts';

export const DEMO_CLOUD = 'demo-cloud';
export const DEMO_DESTINATION = 'demo-local-backups';
export const DEMO_POLICY = 'demo-policy';
export const DEMO_ACCOUNT = 'demo-admin';

export type DemoSetup = {
  cloudId: string;
  destinationId: string;
  policyId: string;
  credentialsFile: string;
  clientId: string;
  /** Whether this start created the objects (false: found from an earlier start). */
  created: { cloud: boolean; destination: boolean; policy: boolean; account: boolean };
  syncTaskId: string;
};

function audit(em: EntityManager, action: string, objectType: string, objectId: string, details: Record<string, unknown>) {
  em.create(AuditEntry, { accountName: 'serve --demo', action, objectType, objectId, details });
}

/** The node configuration `serve --demo` runs its data mover for. */
export const DEMO_NODE_CONFIGURATION = 'demo-proxy';

export async function ensureDemoSetup(services: Services, demo: DemoCloud): Promise<DemoSetup> {
  const dataDir = services.config.dataDir;
  const seal = (s: string) => services.secrets.seal(s);
  const { admin, lab2 } = demo.seed;
  const authDomains: AuthDomainInput[] = [
    { name: admin.domain, username: admin.username, password: admin.password, defaultProject: admin.project },
    { name: lab2.domain, domainId: lab2.domainId, username: lab2.username, password: lab2.password, defaultProject: lab2.project },
  ];
  const backupsDir = path.join(dataDir, 'demo-backups');
  mkdirSync(backupsDir, { recursive: true });
  const credentialsFile = path.join(dataDir, 'demo-credentials.json');

  return systemFork(services.orm).transactional(async (em) => {
    // The cloud: the simulator's Keystone URL changes with its port, so it is refreshed on every start.
    let cloud = await em.findOne(Cloud, { name: DEMO_CLOUD });
    const created = { cloud: !cloud, destination: false, policy: false, account: false };
    if (!cloud) {
      cloud = await createCloud(em, seal, {
        name: DEMO_CLOUD, keystoneUrl: demo.keystoneUrl, region: demo.region, endpointInterface: 'PUBLIC', mode: 'DISK_ATTACHMENT',
        downloadImage: false, domainScoped: false, authDomains,
      });
      await em.flush();
      audit(em, 'cloudCreate', 'Cloud', cloud.id, { name: DEMO_CLOUD, keystoneUrl: demo.keystoneUrl, region: demo.region, authDomains: authDomains.map((d) => d.name) });
    } else {
      em.assign(cloud, { keystoneUrl: demo.keystoneUrl, region: demo.region });
      await setAuthDomains(em, seal, cloud, authDomains, await em.find(CloudAuthDomain, { cloud: cloud.id }));
    }

    // The proxy VM the data mover reads attached volumes through: the simulator's
    // `sb-backup-proxy`, in a node configuration that serves the whole demo cloud.
    let nodeConfiguration = await em.findOne(NodeConfiguration, { name: DEMO_NODE_CONFIGURATION });
    if (!nodeConfiguration) nodeConfiguration = em.create(NodeConfiguration, { name: DEMO_NODE_CONFIGURATION, concurrentTasks: 2 });
    em.assign(nodeConfiguration, { proxyServerId: demo.seed.proxyServerId, cloud });
    cloud.nodeConfiguration = nodeConfiguration;
    await em.flush();

    // The default destination: a repository folder under the data folder.
    let destination = await em.findOne(BackupDestination, { name: DEMO_DESTINATION });
    if (!destination) {
      created.destination = true;
      destination = em.create(BackupDestination, { name: DEMO_DESTINATION, kind: 'FILE_SYSTEM', url: pathToFileURL(backupsDir).href });
      await em.flush();
      audit(em, 'backupDestinationCreate', 'BackupDestination', destination.id, { name: DEMO_DESTINATION, kind: 'FILE_SYSTEM', url: destination.url, isDefault: true });
    }
    if (!destination.isDefault) {
      await em.nativeUpdate(BackupDestination, { isDefault: true, id: { $ne: destination.id } }, { isDefault: false });
      destination.isDefault = true;
    }

    // A policy without schedules: backups run when you start them (no surprise scheduled runs).
    let policy = await em.findOne(Policy, { name: DEMO_POLICY });
    if (!policy) {
      created.policy = true;
      policy = em.create(Policy, {
        name: DEMO_POLICY, description: 'Demo: manual backups to the local demo destination, a full one every 3', destination,
        fullEvery: 3, retention: { keepLastFull: 2, keepLastIncremental: 6 },
      });
      await em.flush();
      audit(em, 'policyCreate', 'Policy', policy.id, { name: DEMO_POLICY, visibility: policy.visibility });
    }

    // The admin account: its secret exists only in the credentials file (a new one if the file is gone).
    let credentials: Credentials | undefined = readCredentials(credentialsFile);
    const account = await em.findOne(ServiceAccount, { name: DEMO_ACCOUNT });
    if (!account) {
      created.account = true;
      const made = await createServiceAccount(em, { name: DEMO_ACCOUNT, role: 'ADMIN' });
      credentials = { clientId: made.clientId, clientSecret: made.clientSecret };
      writeCredentials(credentialsFile, credentials);
    } else if (!credentials || credentials.clientId !== account.clientId) {
      credentials = await rotateSecret(em, account);
      writeCredentials(credentialsFile, credentials);
    }

    // Sync now, unless a sync of this cloud is already waiting or running.
    const pending = await em.findOne(Task, { type: 'INVENTORY_SYNC', cloud: cloud.id, state: { $in: ['QUEUED', 'RUNNING'] } });
    const sync = pending ?? (await createTask(em, { type: 'INVENTORY_SYNC', cloud, priority: 70, params: {} }, null));
    await em.flush();
    return {
      cloudId: cloud.id, destinationId: destination.id, policyId: policy.id, credentialsFile, clientId: credentials.clientId, created, syncTaskId: sync.id,
    };
  });
}

// The file is the token request body itself: `curl -d @demo-credentials.json …/oauth/token`.
function readCredentials(file: string): Credentials | undefined {
  if (!existsSync(file)) return undefined;
  try {
    const c = JSON.parse(readFileSync(file, 'utf8'));
    return typeof c.client_id === 'string' && typeof c.client_secret === 'string' ? { clientId: c.client_id, clientSecret: c.client_secret } : undefined;
  } catch {
    return undefined;
  }
}

function writeCredentials(file: string, c: Credentials) {
  const body = { grant_type: 'client_credentials', client_id: c.clientId, client_secret: c.clientSecret };
  writeFileSync(file, `${JSON.stringify(body, null, 2)}\n`, { mode: 0o600 });
  chmodSync(file, 0o600); // `mode` applies only when the file is new
}
