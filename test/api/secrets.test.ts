// Secrets given to the API (cloud and SSH passwords, Ceph keyrings and ceph.conf, S3 and Swift
// keys) are sealed in the database and appear in no response: every field of every object is
// read back, and every body the app sent in this file is searched.
import { getNamedType, isLeafType, isObjectType, type GraphQLObjectType } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Hypervisor } from '../../src/db/entities/index.ts';
import { systemFork } from '../../src/db/orm.ts';
import { schema } from '../../src/graphql/schema.ts';
import * as G from '../generated/graphql.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { op, sql } from '../helpers/ops.ts';
import { gid, seeder } from '../helpers/seed.ts';
import { registerTestSecrets } from '../helpers/secret-registry.ts';

const SECRETS = {
  cloudPassword: 'cloud-pw-7f3a9c1e',
  cloudPassword2: 'cloud-pw-second-55e1',
  sshPassword: 'ssh-pw-b82d44f0',
  keyring: 'AQBkeyring-3c9e0d1f2a==',
  cephConf: 'mon_host=10.9.8.7-conf-a1b2c3',
  s3Secret: 's3-secret-e4d5c6b7a8',
  swiftPassword: 'swift-pw-91a2b3c4',
};
registerTestSecrets(...Object.values(SECRETS), SECRETS.cloudPassword + '-v2');

/** `{ f1 f2 … }` with every leaf field of `type` that takes no arguments. */
function leaves(typeName: string): string {
  const type = schema.getType(typeName) as GraphQLObjectType;
  return Object.values(type.getFields())
    .filter((f) => isLeafType(getNamedType(f.type)) && f.args.every((a) => a.defaultValue !== undefined || !String(a.type).endsWith('!')))
    .map((f) => f.name)
    .join(' ');
}

/** Every leaf field, plus the leaves of each object field one level down. */
function deep(typeName: string): string {
  const type = schema.getType(typeName) as GraphQLObjectType;
  const objects = Object.values(type.getFields())
    .filter((f) => isObjectType(getNamedType(f.type)) && f.args.length === 0 && !getNamedType(f.type).name.endsWith('Connection'))
    .map((f) => `${f.name} { ${leaves(getNamedType(f.type).name)} }`);
  return `${leaves(typeName)} ${objects.join(' ')}`;
}

describe('secrets', () => {
  let t: TestApp;
  const ids: [string, string][] = [];

  beforeAll(async () => {
    t = await startTestApp();
    const admin = await t.login('ADMIN');
    const s = seeder(t.services.orm);
    const seeded = await s.cloud();
    const project = await s.project(seeded);
    await s.zone(seeded);

    const nc = (await op(t, admin, G.CreateNodeConfigurationDocument, { input: { name: 'nc' } })).data!.nodeConfigurationCreate.nodeConfiguration!;
    const cloud = await op(t, admin, G.CreateCloudDocument, {
      input: {
        name: 'secretive', keystoneUrl: 'https://ks.example/v3', region: 'r1', nodeConfigurationId: nc.id,
        authDomains: [
          { name: 'Default', username: 'u', password: SECRETS.cloudPassword, defaultProject: 'admin' },
          { name: 'd2', username: 'u2', password: SECRETS.cloudPassword2, defaultProject: 'p2' },
        ],
      },
    });
    expect(cloud.data!.cloudCreate.userErrors).toEqual([]);
    ids.push(['Cloud', cloud.data!.cloudCreate.cloud!.id]);
    for (const d of cloud.data!.cloudCreate.cloud!.authDomains) ids.push(['CloudAuthDomain', d.id]);

    const em = systemFork(t.services.orm);
    const hv = em.create(Hypervisor, { cloud: seeded.id, externalId: 'hv', hostname: 'compute-x' });
    await em.flush();
    const h = await op(t, admin, G.ConfigureHypervisorsDocument, { input: { hypervisorIds: [gid('Hypervisor', hv.id)], sshUser: 'root', sshPassword: SECRETS.sshPassword } });
    expect(h.data!.hypervisorsConfigure.userErrors).toEqual([]);
    ids.push(['Hypervisor', gid('Hypervisor', hv.id)]);

    const sp = await op(t, admin, G.CreateStorageProviderDocument, { input: { name: 'ceph', cephUser: 'client.sb', keyring: SECRETS.keyring, cephConf: SECRETS.cephConf, nodeConfigurationId: nc.id } });
    expect(sp.data!.storageProviderCreate.userErrors).toEqual([]);
    ids.push(['StorageProvider', sp.data!.storageProviderCreate.storageProvider!.id]);

    const s3 = await op(t, admin, G.CreateDestinationDocument, {
      input: { name: 's3', kind: 'S3', url: 's3://bucket/p?endpoint=http://127.0.0.1:9000', credentials: { accessKeyId: 'AKIAX', secretAccessKey: SECRETS.s3Secret }, nodeConfigurationIds: [nc.id], projectIds: [gid('Project', project.id)], visibility: 'CHOSEN_PROJECTS' },
    });
    const swift = await op(t, admin, G.CreateDestinationDocument, {
      input: { name: 'swift', kind: 'SWIFT', url: 'swift://c/p?auth=http://ks.example/v3', credentials: { username: 'sw', password: SECRETS.swiftPassword, projectName: 'svc' } },
    });
    for (const d of [s3, swift]) {
      expect(d.data!.backupDestinationCreate.userErrors).toEqual([]);
      ids.push(['BackupDestination', d.data!.backupDestinationCreate.backupDestination!.id]);
    }
    // Secrets replaced through updates must stay hidden too.
    const upd = await op(t, admin, G.UpdateCloudDocument, { input: { id: cloud.data!.cloudCreate.cloud!.id, authDomains: [{ name: 'Default', username: 'u', password: SECRETS.cloudPassword + '-v2', defaultProject: 'admin' }, { name: 'd2', username: 'u2', defaultProject: 'p2' }] } });
    expect(upd.data!.cloudUpdate.userErrors).toEqual([]);
  });
  afterAll(() => t?.close());

  it('reads every field of every object as ADMIN and OPERATOR', async () => {
    for (const role of ['ADMIN', 'OPERATOR'] as const) {
      const token = await t.login(role);
      for (const [type, id] of ids) {
        const res = await t.gql(token, `query($id: ID!) { node(id: $id) { id ... on ${type} { ${deep(type)} } } }`, { id });
        expect(res.errors, type).toBeUndefined();
        expect(res.data.node.id).toBe(id);
      }
      const lists = await t.gql(token, `{
        clouds { edges { node { ${deep('Cloud')} authDomains { ${leaves('CloudAuthDomain')} } } } }
        backupDestinations { edges { node { ${deep('BackupDestination')} } } }
        nodeConfigurations { edges { node { ${deep('NodeConfiguration')} } } }
      }`);
      expect(lists.errors).toBeUndefined();
      expect(lists.data.backupDestinations.edges.map((e: any) => e.node.hasCredentials)).toEqual([true, true]);
      expect(lists.data.clouds.edges.find((e: any) => e.node.name === 'secretive').node.authDomains.map((d: any) => d.hasPassword)).toEqual([true, true]);
    }
  });

  it('appears in no response body of this file', () => {
    expect(t.responses.length).toBeGreaterThan(20);
    for (const body of t.responses) {
      for (const [what, value] of Object.entries(SECRETS)) expect(body.includes(value), `${what} leaked in ${body.slice(0, 200)}`).toBe(false);
      expect(body).not.toContain('v1:'); // nor in sealed form
    }
  });

  it('is sealed in the database, and nowhere in plain text', async () => {
    const sealed = [
      ...(await sql(t, 'select password as v from cloud_auth_domain')),
      ...(await sql(t, 'select ssh_password as v from hypervisor where ssh_password is not null')),
      ...(await sql(t, 'select keyring as v from storage_provider union all select ceph_conf from storage_provider')),
      ...(await sql(t, 'select credentials as v from backup_destination')),
    ].map((r) => r.v as string);
    expect(sealed).toHaveLength(7);
    for (const v of sealed) expect(v.startsWith('v1:')).toBe(true);
    const opened = sealed.map((v) => t.services.secrets.open(v)).join('\n');
    for (const value of [SECRETS.cloudPassword + '-v2', SECRETS.cloudPassword2, SECRETS.sshPassword, SECRETS.keyring, SECRETS.cephConf, SECRETS.s3Secret, SECRETS.swiftPassword]) {
      expect(opened).toContain(value);
    }
    // No table holds any secret in plain text (audit details included).
    const tables = (await sql(t, "select tablename from pg_tables where schemaname = 'public'")).map((r) => r.tablename as string);
    for (const table of tables) {
      const [dump] = await sql(t, `select coalesce(string_agg(x::text, '\n'), '') as text from "${table}" x`);
      for (const [what, value] of Object.entries(SECRETS)) expect(dump.text.includes(value), `${what} in ${table}`).toBe(false);
    }
  });
});
