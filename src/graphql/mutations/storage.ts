// Admin mutations for Ceph storage providers (keyring and ceph.conf sealed) and node
// configurations.
import { Cloud, NodeConfiguration, PoolStrategies, StorageProvider } from '../../db/entities/index.ts';
import { builder } from '../builder.ts';

import { NodeConfigurationRef, StorageProviderRef } from '../refs.ts';
import { PoolStrategyEnum } from '../storage-providers.ts';
import { loadRef, mutate, name, payload, secret, shortText, validate, z, deleteMutation } from './common.ts';

/** Configuration writes: the `config:write` action of src/auth/policy.ts (ADMIN). */
const ADMIN = { can: 'config:write' as const };
const poolName = z.string().regex(/^[A-Za-z0-9._-]{1,255}$/, 'a Ceph pool name: letters, digits, . _ -');

// --- storage providers -------------------------------------------------------------------

const providerFields = {
  name,
  cephUser: z.string().regex(/^[A-Za-z0-9._-]{1,255}$/, 'a Ceph user name, e.g. client.strongbox or strongbox'),
  keyring: secret,
  cephConf: secret,
  poolStrategy: z.enum(PoolStrategies),
  pools: z.array(poolName).max(200, 'at most 200 pools'),
  nodeConfigurationId: z.string().nullish(),
};

const StorageProviderCreateInput = builder.inputType('StorageProviderCreateInput', {
  description: 'A Ceph RBD cluster; keyring and ceph.conf contents are sealed and never returned',
  fields: (t) => ({
    name: t.string({ required: true }),
    cephUser: t.string({ required: true }),
    keyring: t.string({ required: true, description: 'Contents of the keyring file' }),
    cephConf: t.string({ required: true, description: 'Contents of ceph.conf' }),
    poolStrategy: t.field({ type: PoolStrategyEnum, defaultValue: 'EXCLUDE' }),
    pools: t.stringList({ defaultValue: [] }),
    nodeConfigurationId: t.id(),
  }),
});

const StorageProviderUpdateInput = builder.inputType('StorageProviderUpdateInput', {
  fields: (t) => ({
    id: t.id({ required: true }),
    name: t.string(),
    cephUser: t.string(),
    keyring: t.string({ description: 'Replaces the stored keyring' }),
    cephConf: t.string({ description: 'Replaces the stored ceph.conf' }),
    poolStrategy: t.field({ type: PoolStrategyEnum }),
    pools: t.stringList(),
    nodeConfigurationId: t.id(),
  }),
});

const StorageProviderPayload = payload('StorageProviderPayload', 'storageProvider', StorageProviderRef);

builder.mutationField('storageProviderCreate', (t) =>
  t.field({
    type: StorageProviderPayload,
    authScopes: ADMIN,
    args: { input: t.arg({ type: StorageProviderCreateInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      mutate(ctx, async (em) => {
        const v = validate(z.object(providerFields), input);
        const nodeConfiguration = v.nodeConfigurationId ? await loadRef(em, ctx, NodeConfiguration, 'NodeConfiguration', v.nodeConfigurationId, ['nodeConfigurationId']) : undefined;
        const seal = (s: string) => ctx.services.secrets.seal(s);
        const storageProvider = em.create(StorageProvider, {
          name: v.name, cephUser: v.cephUser, keyring: seal(v.keyring), cephConf: seal(v.cephConf), poolStrategy: v.poolStrategy, pools: v.pools, nodeConfiguration,
        });
        return {
          result: { storageProvider },
          audit: { action: 'storageProviderCreate', objectType: 'StorageProvider', objectId: storageProvider.id, details: { name: v.name, cephUser: v.cephUser, poolStrategy: v.poolStrategy, pools: v.pools } },
        };
      }),
  }),
);

builder.mutationField('storageProviderUpdate', (t) =>
  t.field({
    type: StorageProviderPayload,
    authScopes: ADMIN,
    args: { input: t.arg({ type: StorageProviderUpdateInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      mutate(ctx, async (em) => {
        const v = validate(
          z.object({
            id: z.string(), name: name.nullish(), cephUser: providerFields.cephUser.nullish(), keyring: secret.nullish(), cephConf: secret.nullish(),
            poolStrategy: providerFields.poolStrategy.nullish(), pools: providerFields.pools.nullish(), nodeConfigurationId: z.string().nullish(),
          }),
          input,
        );
        const sp = await loadRef(em, ctx, StorageProvider, 'StorageProvider', v.id, ['id']);
        const seal = (s: string) => ctx.services.secrets.seal(s);
        em.assign(sp, {
          ...(v.name != null ? { name: v.name } : {}),
          ...(v.cephUser != null ? { cephUser: v.cephUser } : {}),
          ...(v.keyring != null ? { keyring: seal(v.keyring) } : {}),
          ...(v.cephConf != null ? { cephConf: seal(v.cephConf) } : {}),
          ...(v.poolStrategy != null ? { poolStrategy: v.poolStrategy } : {}),
          ...(v.pools != null ? { pools: v.pools } : {}),
        });
        if (v.nodeConfigurationId != null) sp.nodeConfiguration = await loadRef(em, ctx, NodeConfiguration, 'NodeConfiguration', v.nodeConfigurationId, ['nodeConfigurationId']);
        return {
          result: { storageProvider: sp },
          audit: { action: 'storageProviderUpdate', objectType: 'StorageProvider', objectId: sp.id, details: { name: sp.name, keyringChanged: v.keyring != null, cephConfChanged: v.cephConf != null } },
        };
      }),
  }),
);

deleteMutation('storageProviderDelete', StorageProvider, 'StorageProvider');

// --- node configurations -----------------------------------------------------------------

const nodeConfigurationFields = {
  name,
  concurrentTasks: z.number().int().min(1, 'at least 1').max(256, 'at most 256'),
  stagingPath: z.string().max(4096).refine((p) => p.startsWith('/'), 'must be an absolute path'),
  attachmentLimit: z.number().int().min(1).max(256),
  cloudId: z.string().nullish(),
  proxyServerId: shortText.nullish(),
};

const NodeConfigurationCreateInput = builder.inputType('NodeConfigurationCreateInput', {
  fields: (t) => ({
    name: t.string({ required: true }),
    concurrentTasks: t.int({ defaultValue: 2 }),
    stagingPath: t.string({ defaultValue: '/var/lib/strongbox/staging' }),
    attachmentLimit: t.int({ defaultValue: 25, description: 'Most volumes attached at once to a proxy VM' }),
    cloudId: t.id({ description: 'The cloud it serves as a whole, if any' }),
    proxyServerId: t.string({ description: 'Nova server ID of the proxy VM its data movers run in' }),
  }),
});

const NodeConfigurationUpdateInput = builder.inputType('NodeConfigurationUpdateInput', {
  fields: (t) => ({
    id: t.id({ required: true }),
    name: t.string(),
    concurrentTasks: t.int(),
    stagingPath: t.string(),
    attachmentLimit: t.int(),
    cloudId: t.id(),
    proxyServerId: t.string(),
  }),
});

const NodeConfigurationPayload = payload('NodeConfigurationPayload', 'nodeConfiguration', NodeConfigurationRef);

builder.mutationField('nodeConfigurationCreate', (t) =>
  t.field({
    type: NodeConfigurationPayload,
    authScopes: ADMIN,
    args: { input: t.arg({ type: NodeConfigurationCreateInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      mutate(ctx, async (em) => {
        const v = validate(z.object(nodeConfigurationFields), input);
        const cloud = v.cloudId ? await loadRef(em, ctx, Cloud, 'Cloud', v.cloudId, ['cloudId']) : undefined;
        const nodeConfiguration = em.create(NodeConfiguration, {
          name: v.name, concurrentTasks: v.concurrentTasks, stagingPath: v.stagingPath, attachmentLimit: v.attachmentLimit, cloud, proxyServerId: v.proxyServerId ?? undefined,
        });
        return { result: { nodeConfiguration }, audit: { action: 'nodeConfigurationCreate', objectType: 'NodeConfiguration', objectId: nodeConfiguration.id, details: { name: v.name } } };
      }),
  }),
);

builder.mutationField('nodeConfigurationUpdate', (t) =>
  t.field({
    type: NodeConfigurationPayload,
    authScopes: ADMIN,
    args: { input: t.arg({ type: NodeConfigurationUpdateInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      mutate(ctx, async (em) => {
        const f = nodeConfigurationFields;
        const v = validate(
          z.object({
            id: z.string(), name: f.name.nullish(), concurrentTasks: f.concurrentTasks.nullish(), stagingPath: f.stagingPath.nullish(),
            attachmentLimit: f.attachmentLimit.nullish(), cloudId: z.string().nullish(), proxyServerId: shortText.nullish(),
          }),
          input,
        );
        const nc = await loadRef(em, ctx, NodeConfiguration, 'NodeConfiguration', v.id, ['id']);
        const changes: Record<string, unknown> = {};
        for (const key of ['name', 'concurrentTasks', 'stagingPath', 'attachmentLimit', 'proxyServerId'] as const) if (v[key] != null) changes[key] = v[key];
        if (v.cloudId != null) changes.cloud = await loadRef(em, ctx, Cloud, 'Cloud', v.cloudId, ['cloudId']);
        em.assign(nc, changes);
        return { result: { nodeConfiguration: nc }, audit: { action: 'nodeConfigurationUpdate', objectType: 'NodeConfiguration', objectId: nc.id, details: { changed: Object.keys(changes) } } };
      }),
  }),
);

deleteMutation('nodeConfigurationDelete', NodeConfiguration, 'NodeConfiguration');
