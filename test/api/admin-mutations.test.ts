// The admin CRUD mutations, through the portals' own operations (schema/operations): each
// creates/changes what it says, writes an audit entry, and is refused to every other role.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Backup, Hypervisor, VolumeType, type Cloud, type Project } from '../../src/db/entities/index.ts';
import { systemFork } from '../../src/db/orm.ts';
import * as G from '../generated/graphql.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { op, sql } from '../helpers/ops.ts';
import { gid, seeder } from '../helpers/seed.ts';

const cloudInput = (name: string) => ({
  name,
  keystoneUrl: 'https://keystone.example.net:5000/v3',
  region: 'RegionOne',
  endpointInterface: 'PUBLIC' as const,
  mode: 'SSH_TRANSFER' as const,
  downloadImage: true,
  domainScoped: true,
  authDomains: [{ name: 'Default', domainId: 'default', username: 'strongbox', password: 'pw-1', defaultProject: 'admin' }],
});

describe('admin mutations', () => {
  let t: TestApp;
  let admin: string;
  let seedCloud: Cloud;
  let p1: Project;
  let p2: Project;

  beforeAll(async () => {
    t = await startTestApp();
    admin = await t.login('ADMIN');
    const s = seeder(t.services.orm);
    seedCloud = await s.cloud();
    p1 = await s.project(seedCloud, 'alpha');
    p2 = await s.project(seedCloud, 'beta');
  });
  afterAll(() => t?.close());

  const audits = (action: string) => sql(t, 'select * from audit_entry where action = $1', [action]);

  it('cloudCreate stores the cloud and its auth domains; cloudUpdate changes them; cloudDelete removes it', async () => {
    const nc = await op(t, admin, G.CreateNodeConfigurationDocument, { input: { name: 'nc-clouds' } });
    expect(nc.data?.nodeConfigurationCreate.userErrors).toEqual([]);
    const ncId = nc.data!.nodeConfigurationCreate.nodeConfiguration!.id;

    const created = await op(t, admin, G.CreateCloudDocument, { input: { ...cloudInput('east'), nodeConfigurationId: ncId } });
    expect(created.errors).toBeUndefined();
    const cloud = created.data!.cloudCreate.cloud!;
    expect(created.data!.cloudCreate.userErrors).toEqual([]);
    expect(cloud).toMatchObject({
      name: 'east', keystoneUrl: 'https://keystone.example.net:5000/v3', region: 'RegionOne', endpointInterface: 'PUBLIC', mode: 'SSH_TRANSFER',
      downloadImage: true, domainScoped: true, nodeConfiguration: { id: ncId, name: 'nc-clouds' },
      authDomains: [{ name: 'Default', domainId: 'default', username: 'strongbox', defaultProject: 'admin', hasPassword: true }],
    });
    expect(await audits('cloudCreate')).toHaveLength(1);

    const updated = await op(t, admin, G.UpdateCloudDocument, {
      input: {
        id: cloud.id, region: 'RegionTwo', endpointInterface: 'INTERNAL',
        authDomains: [
          { name: 'Default', username: 'strongbox2', defaultProject: 'admin' }, // keeps its password
          { name: 'customers', username: 'sb', password: 'pw-2', defaultProject: 'svc' },
        ],
      },
    });
    expect(updated.data!.cloudUpdate.userErrors).toEqual([]);
    expect(updated.data!.cloudUpdate.cloud).toMatchObject({ region: 'RegionTwo', endpointInterface: 'INTERNAL', mode: 'SSH_TRANSFER' });
    expect(updated.data!.cloudUpdate.cloud!.authDomains.map((d) => [d.name, d.username, d.hasPassword])).toEqual([
      ['Default', 'strongbox2', true],
      ['customers', 'sb', true],
    ]);
    const [kept] = await sql(t, "select password from cloud_auth_domain where name = 'Default' and username = 'strongbox2'");
    expect(t.services.secrets.open(kept.password)).toBe('pw-1');

    const newDomainWithoutPassword = await op(t, admin, G.UpdateCloudDocument, { input: { id: cloud.id, authDomains: [{ name: 'other', username: 'x', defaultProject: 'y' }] } });
    expect(newDomainWithoutPassword.data!.cloudUpdate.userErrors[0]).toMatchObject({ code: 'INVALID', field: ['input', 'authDomains', '0', 'password'] });

    const deleted = await op(t, admin, G.DeleteCloudDocument, { input: { id: cloud.id } });
    expect(deleted.data!.cloudDelete).toEqual({ deletedId: cloud.id, userErrors: [] });
    expect(await sql(t, "select id from cloud where name = 'east'")).toEqual([]);
    expect(await sql(t, "select id from cloud_auth_domain where username in ('strongbox2', 'sb')")).toEqual([]);
    const again = await op(t, admin, G.DeleteCloudDocument, { input: { id: cloud.id } });
    expect(again.data!.cloudDelete.userErrors[0]!.code).toBe('NOT_FOUND');
  });

  it('hypervisorsConfigure sets SSH settings on many hypervisors at once', async () => {
    const em = systemFork(t.services.orm);
    const hs = [1, 2, 3].map((i) => em.create(Hypervisor, { cloud: seedCloud.id, externalId: `hv-${i}`, hostname: `compute-${i}` }));
    await em.flush();
    const res = await op(t, admin, G.ConfigureHypervisorsDocument, {
      input: { hypervisorIds: hs.slice(0, 2).map((h) => gid('Hypervisor', h.id)), sshUser: 'root', sshPassword: 'hv-pw', sshKeyPath: '/etc/strongbox/id_ed25519', sshPort: 2222, commandPrefix: 'docker exec nova_libvirt' },
    });
    expect(res.data!.hypervisorsConfigure.userErrors).toEqual([]);
    expect(res.data!.hypervisorsConfigure.hypervisors!.map((h) => [h.hostname, h.sshUser, h.hasSshPassword, h.sshPort, h.commandPrefix])).toEqual([
      ['compute-1', 'root', true, 2222, 'docker exec nova_libvirt'],
      ['compute-2', 'root', true, 2222, 'docker exec nova_libvirt'],
    ]);
    const rows = await sql(t, 'select hostname, ssh_user from hypervisor order by hostname');
    expect(rows).toEqual([
      { hostname: 'compute-1', ssh_user: 'root' },
      { hostname: 'compute-2', ssh_user: 'root' },
      { hostname: 'compute-3', ssh_user: null },
    ]);
    const badPort = await op(t, admin, G.ConfigureHypervisorsDocument, { input: { hypervisorIds: [gid('Hypervisor', hs[2]!.id)], sshPort: 70000 } });
    expect(badPort.data!.hypervisorsConfigure.userErrors[0]).toMatchObject({ code: 'INVALID', field: ['input', 'sshPort'] });
  });

  it('maps a zone to a storage provider and a volume type to a Ceph pool', async () => {
    const s = seeder(t.services.orm);
    const zone = await s.zone(seedCloud);
    const sp = await op(t, admin, G.CreateStorageProviderDocument, {
      input: { name: 'ceph-a', cephUser: 'client.strongbox', keyring: '[client.strongbox]\nkey = AQ==', cephConf: '[global]\nmon_host = 10.0.0.1', poolStrategy: 'INCLUDE', pools: ['volumes', 'vms'] },
    });
    expect(sp.data!.storageProviderCreate.userErrors).toEqual([]);
    const spId = sp.data!.storageProviderCreate.storageProvider!.id;
    expect(sp.data!.storageProviderCreate.storageProvider).toMatchObject({ kind: 'CEPH_RBD', hasKeyring: true, hasCephConf: true, poolStrategy: 'INCLUDE', pools: ['volumes', 'vms'] });

    const z = await op(t, admin, G.UpdateAvailabilityZoneDocument, { input: { id: gid('AvailabilityZone', zone.id), storageProviderId: spId, visibility: 'CHOSEN_PROJECTS', projectIds: [gid('Project', p1.id)] } });
    expect(z.data!.availabilityZoneUpdate).toMatchObject({
      userErrors: [],
      availabilityZone: { visibility: 'CHOSEN_PROJECTS', storageProvider: { id: spId, name: 'ceph-a' }, projects: [{ id: gid('Project', p1.id) }] },
    });
    const wrongType = await op(t, admin, G.UpdateAvailabilityZoneDocument, { input: { id: gid('AvailabilityZone', zone.id), storageProviderId: gid('Project', p1.id) } });
    expect(wrongType.data!.availabilityZoneUpdate.userErrors[0]).toMatchObject({ code: 'NOT_FOUND', field: ['input', 'storageProviderId'] });

    const em = systemFork(t.services.orm);
    const vt = em.create(VolumeType, { cloud: seedCloud.id, externalId: 'vt-1', name: 'ceph-ssd' });
    await em.flush();
    const mapped = await op(t, admin, G.UpdateVolumeTypeDocument, { input: { id: gid('VolumeType', vt.id), cephPool: 'volumes-ssd' } });
    expect(mapped.data!.volumeTypeUpdate).toEqual({ userErrors: [], volumeType: { id: gid('VolumeType', vt.id), name: 'ceph-ssd', cephPool: 'volumes-ssd' } });
    const unmapped = await op(t, admin, G.UpdateVolumeTypeDocument, { input: { id: gid('VolumeType', vt.id), cephPool: null } });
    expect(unmapped.data!.volumeTypeUpdate.volumeType!.cephPool).toBeNull();
    expect((await sql(t, 'select ceph_pool from volume_type where id = $1', [vt.id]))[0].ceph_pool).toBeNull();
  });

  it('destinations: kinds, settings, visibility, node configurations, and exactly one default', async () => {
    const nc = (await op(t, admin, G.CreateNodeConfigurationDocument, { input: { name: 'nc-dest' } })).data!.nodeConfigurationCreate.nodeConfiguration!;
    const fs = await op(t, admin, G.CreateDestinationDocument, { input: { name: 'local', kind: 'FILE_SYSTEM', url: 'file:///srv/strongbox', nodeConfigurationIds: [nc.id] } });
    expect(fs.data!.backupDestinationCreate.userErrors).toEqual([]);
    expect(fs.data!.backupDestinationCreate.backupDestination).toMatchObject({ isDefault: true, hasCredentials: false, compression: 'ZSTD', encryption: true, chunkSizeBytes: 1048576, nodeConfigurations: [{ id: nc.id }] });
    const s3 = await op(t, admin, G.CreateDestinationDocument, {
      input: {
        name: 'minio', kind: 'S3', url: 's3://backups/strongbox?endpoint=http://127.0.0.1:9000&region=us-east-1', settings: { forcePathStyle: true },
        credentials: { accessKeyId: 'AKIA1', secretAccessKey: 's3-secret' }, visibility: 'CHOSEN_PROJECTS', projectIds: [gid('Project', p2.id)], isDefault: true,
        compression: 'NONE', chunkSizeBytes: 4 * 1024 * 1024,
      },
    });
    expect(s3.data!.backupDestinationCreate.userErrors).toEqual([]);
    expect(s3.data!.backupDestinationCreate.backupDestination).toMatchObject({ kind: 'S3', isDefault: true, hasCredentials: true, visibility: 'CHOSEN_PROJECTS', projects: [{ name: 'beta' }], settings: { forcePathStyle: true } });
    expect(await sql(t, 'select name from backup_destination where is_default')).toEqual([{ name: 'minio' }]);

    const undefault = await op(t, admin, G.UpdateDestinationDocument, { input: { id: s3.data!.backupDestinationCreate.backupDestination!.id, isDefault: false } });
    expect(undefault.data!.backupDestinationUpdate.userErrors[0]!.code).toBe('DEFAULT_REQUIRED');
    const moved = await op(t, admin, G.UpdateDestinationDocument, { input: { id: fs.data!.backupDestinationCreate.backupDestination!.id, isDefault: true } });
    expect(moved.data!.backupDestinationUpdate.userErrors).toEqual([]);
    expect(await sql(t, 'select name from backup_destination where is_default')).toEqual([{ name: 'local' }]);
    const del = await op(t, admin, G.DeleteDestinationDocument, { input: { id: fs.data!.backupDestinationCreate.backupDestination!.id } });
    expect(del.data!.backupDestinationDelete.userErrors).toEqual([]);
    expect(await sql(t, 'select name from backup_destination where is_default')).toEqual([{ name: 'minio' }]);

    for (const [kind, url] of [
      ['FILE_SYSTEM', 's3://bucket/x'],
      ['FILE_SYSTEM', 'file://host/path'],
      ['S3', 's3://Bad_Bucket/x'],
      ['S3', 's3://key:secret@bucket/x'],
      ['S3', 's3://bucket/x?secretKey=abc'],
      ['S3', 's3://bucket/x?endpoint=ftp://x'],
      ['SWIFT', 'swift://container/prefix'],
      ['SWIFT', 'swift://container/prefix?auth=http://keystone/v2.0'],
      ['S3', 'not a url'],
    ] as const) {
      const res = await op(t, admin, G.CreateDestinationDocument, { input: { name: `bad-${kind}`, kind, url } });
      expect(res.data!.backupDestinationCreate.userErrors[0], url).toMatchObject({ code: 'INVALID_URL', field: ['input', 'url'] });
    }
    const secretSetting = await op(t, admin, G.CreateDestinationDocument, { input: { name: 'bad-settings', kind: 'S3', url: 's3://bucket/x', settings: { secretAccessKey: 'x' } } });
    expect(secretSetting.data!.backupDestinationCreate.userErrors[0]).toMatchObject({ code: 'INVALID', field: ['input', 'settings'] });
    const badChunk = await op(t, admin, G.CreateDestinationDocument, { input: { name: 'bad-chunk', kind: 'FILE_SYSTEM', url: 'file:///x', chunkSizeBytes: 1000 } });
    expect(badChunk.data!.backupDestinationCreate.userErrors[0]).toMatchObject({ code: 'INVALID', field: ['input', 'chunkSizeBytes'] });
  });

  it('policies: typed schedules, retention and rules; policyAssign honours visibility', async () => {
    const s = seeder(t.services.orm);
    const [vm1] = await s.instances(p1, 1);
    const [vm2] = await s.instances(p2, 1);
    const res = await op(t, admin, G.CreatePolicyDocument, {
      input: {
        name: 'gold', priority: 80, retries: 3, fullEvery: 6, visibility: 'CHOSEN_PROJECTS', projectIds: [gid('Project', p1.id)],
        schedules: [
          { timesOfDay: ['01:30', '13:30'], daysOfWeek: [1, 2, 3, 4, 5], windowMinutes: 120, timeZone: 'Europe/Berlin' },
          { intervalHours: 4, betweenHours: { from: 8, to: 20 }, windowMinutes: 30 },
        ],
        retention: { keepLastFull: 4, keepLastIncremental: 14, keepDays: 30, keepLastWhileInstanceExists: true },
        rules: [{ projectId: gid('Project', p1.id), namePattern: 'db-*' }],
      },
    });
    expect(res.data!.policyCreate.userErrors).toEqual([]);
    const policy = res.data!.policyCreate.policy!;
    expect(policy).toMatchObject({
      name: 'gold', priority: 80, retries: 3, fullEvery: 6, destination: { name: 'minio' },
      schedules: [
        { timesOfDay: ['01:30', '13:30'], daysOfWeek: [1, 2, 3, 4, 5], intervalHours: null, betweenHours: null, windowMinutes: 120, timeZone: 'Europe/Berlin' },
        { timesOfDay: [], daysOfWeek: [], intervalHours: 4, betweenHours: { from: 8, to: 20 }, windowMinutes: 30, timeZone: null },
      ],
      retention: { keepLastFull: 4, keepLastIncremental: 14, keepDays: 30, keepLastWhileInstanceExists: true },
      rules: [{ project: { id: gid('Project', p1.id) }, zoneName: null, namePattern: 'db-*' }],
      projects: [{ name: 'alpha' }],
    });

    const ok = await op(t, admin, G.AssignPolicyDocument, { input: { policyId: policy.id, instanceIds: [gid('Instance', vm1!.id)] } });
    expect(ok.data!.policyAssign.userErrors).toEqual([]);
    expect((await sql(t, 'select policy_id from instance where id = $1', [vm1!.id]))[0].policy_id).toBe(vm1 && (await sql(t, "select id from policy where name = 'gold'"))[0].id);
    const notVisible = await op(t, admin, G.AssignPolicyDocument, { input: { policyId: policy.id, instanceIds: [gid('Instance', vm2!.id)] } });
    expect(notVisible.data!.policyAssign.userErrors[0]).toMatchObject({ code: 'NOT_VISIBLE', field: ['input', 'instanceIds', '0'] });
    expect((await sql(t, 'select policy_id from instance where id = $1', [vm2!.id]))[0].policy_id).toBeNull();

    const upd = await op(t, admin, G.UpdatePolicyDocument, { input: { id: policy.id, priority: 10, visibility: 'ALL_PROJECTS' } });
    expect(upd.data!.policyUpdate.policy).toMatchObject({ priority: 10, visibility: 'ALL_PROJECTS', name: 'gold' });
    expect(await audits('policyUpdate')).toHaveLength(1);
  });

  it('quotas: create with limits, assign to projects (adding)', async () => {
    const q = await op(t, admin, G.CreateQuotaDocument, { input: { name: 'q1', action: 'BACKUP', scope: 'PROJECT', measure: 'BYTES', windowSeconds: 86400, softLimit: '9007199254740993', hardLimit: '18014398509481984' } });
    expect(q.data!.quotaCreate.userErrors).toEqual([]);
    expect(q.data!.quotaCreate.quota).toMatchObject({ softLimit: '9007199254740993', hardLimit: '18014398509481984', projects: [] });
    const id = q.data!.quotaCreate.quota!.id;
    await op(t, admin, G.AssignQuotaDocument, { input: { quotaId: id, projectIds: [gid('Project', p1.id)] } });
    const both = await op(t, admin, G.AssignQuotaDocument, { input: { quotaId: id, projectIds: [gid('Project', p2.id), gid('Project', p1.id)] } });
    expect(both.data!.quotaAssign.quota!.projects.map((p) => p.name).sort()).toEqual(['alpha', 'beta']);
    const inverted = await op(t, admin, G.CreateQuotaDocument, { input: { name: 'q2', action: 'RESTORE', scope: 'INSTANCE', measure: 'COUNT', windowSeconds: 3600, softLimit: 10, hardLimit: 5 } });
    expect(inverted.data!.quotaCreate.userErrors[0]).toMatchObject({ code: 'INVALID', field: ['input', 'softLimit'] });
    const none = await op(t, admin, G.CreateQuotaDocument, { input: { name: 'q3', action: 'RESTORE', scope: 'INSTANCE', measure: 'COUNT', windowSeconds: 3600 } });
    expect(none.data!.quotaCreate.userErrors[0]!.code).toBe('INVALID');
  });

  it('cloudDelete is refused while backups of the cloud are catalogued, and changes nothing', async () => {
    const s = seeder(t.services.orm);
    const c = await s.cloud('with-backups');
    const p = await s.project(c);
    const [vm] = await s.instances(p, 1);
    const d = await s.destination();
    const em = systemFork(t.services.orm);
    em.create(Backup, { cloud: c.id, project: p.id, instance: vm!.id, destination: d.id, state: 'AVAILABLE' });
    await em.flush();
    const res = await op(t, admin, G.DeleteCloudDocument, { input: { id: gid('Cloud', c.id) } });
    expect(res.data!.cloudDelete).toMatchObject({ deletedId: null, userErrors: [{ code: 'IN_USE', field: ['input', 'id'] }] });
    expect(await sql(t, 'select count(*)::int as n from instance where cloud_id = $1', [c.id])).toEqual([{ n: 1 }]);
  });

  it('every audit entry names the account and holds no secret', async () => {
    const rows = await sql(t, 'select account_name, action, details::text as details from audit_entry');
    expect(rows.length).toBeGreaterThan(10);
    for (const r of rows) {
      expect(r.account_name).toMatch(/^admin-/);
      for (const s of ['pw-1', 'pw-2', 'hv-pw', 's3-secret', 'AQ==', 'mon_host']) expect(r.details).not.toContain(s);
    }
  });

  it('OPERATOR, BILLING and TENANT cannot run admin mutations', async () => {
    const callers = [await t.login('OPERATOR'), await t.login('BILLING'), await t.login('TENANT', [p1.id])];
    for (const who of callers) {
      const before = await sql(t, 'select count(*)::int as n from cloud');
      const tries = [
        op(t, who, G.CreateCloudDocument, { input: cloudInput('sneaky') }),
        op(t, who, G.CreateNodeConfigurationDocument, { input: { name: 'sneaky' } }),
        op(t, who, G.CreateDestinationDocument, { input: { name: 'sneaky', kind: 'FILE_SYSTEM', url: 'file:///x' } }),
        op(t, who, G.CreatePolicyDocument, { input: { name: 'sneaky' } }),
        op(t, who, G.CreateQuotaDocument, { input: { name: 'sneaky', action: 'BACKUP', scope: 'PROJECT', measure: 'COUNT', windowSeconds: 3600, hardLimit: 1 } }),
        op(t, who, G.CreateStorageProviderDocument, { input: { name: 'sneaky', cephUser: 'x', keyring: 'k', cephConf: 'c' } }),
        op(t, who, G.ConfigureHypervisorsDocument, { input: { hypervisorIds: [], sshUser: 'x' } }),
        op(t, who, G.DeleteCloudDocument, { input: { id: gid('Cloud', seedCloud.id) } }),
      ];
      for (const res of await Promise.all(tries)) {
        expect(res.data).toBeNull();
        expect(res.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
      }
      expect(await sql(t, 'select count(*)::int as n from cloud')).toEqual(before);
    }
    expect(await sql(t, "select count(*)::int as n from audit_entry where details::text like '%sneaky%'")).toEqual([{ n: 0 }]);
  });
});
