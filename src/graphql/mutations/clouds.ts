// Admin mutations for clouds and what hangs off them: cloudCreate/Update/Delete (auth domains
// with sealed passwords), hypervisorsConfigure (SSH settings, sealed password),
// availabilityZoneUpdate (storage provider, node configuration, visibility) and volumeTypeUpdate
// (Ceph pool).
import {
  AvailabilityZone, Backup, Cloud, CloudAuthDomain, CloudModes, EndpointInterfaces, Hypervisor, NodeConfiguration, Project,
  StorageProvider, Visibilities, VolumeType,
} from '../../db/entities/index.ts';
import { createCloud, setAuthDomains } from '../../engine/clouds.ts';
import { builder } from '../builder.ts';
import { CloudModeEnum, EndpointInterfaceEnum, VisibilityEnum } from '../clouds.ts';
import { toGlobalId } from '../node.ts';
import { AvailabilityZoneRef, CloudRef, HypervisorRef, VolumeTypeRef } from '../refs.ts';
import { UserErrorException, UserErrorRef, type UserError } from '../user-errors.ts';
import { DeleteInput, DeletePayload, idList, loadRef, loadRefs, mutate, name, payload, secret, shortText, validate, z } from './common.ts';

/** Configuration writes: the `config:write` action of src/auth/policy.ts (ADMIN). */
const ADMIN = { can: 'config:write' as const };

/** A Keystone v3 endpoint: http(s), no credentials in the URL, path ending in /v3. */
export const keystoneUrl = z
  .string()
  .max(2048, 'at most 2048 characters')
  .refine((s) => {
    try {
      const u = new URL(s);
      return (u.protocol === 'https:' || u.protocol === 'http:') && !u.username && !u.password && /\/v3\/?$/.test(u.pathname);
    } catch {
      return false;
    }
  }, 'must be an http(s) Keystone v3 URL whose path ends in /v3, without credentials');

const authDomainSchema = z.object({
  name: name,
  domainId: shortText.nullish(),
  username: name,
  password: secret.nullish(),
  defaultProject: name,
});

const cloudFields = {
  name,
  keystoneUrl,
  region: name,
  endpointInterface: z.enum(EndpointInterfaces),
  mode: z.enum(CloudModes),
  downloadImage: z.boolean(),
  keepLastSnapshot: z.boolean(),
  domainScoped: z.boolean(),
  nodeConfigurationId: z.string().nullish(),
  authDomains: z.array(authDomainSchema).min(1, 'at least one auth domain').max(50, 'at most 50 auth domains'),
};

const uniqueDomains = (domains: { name: string }[] | null | undefined) => !domains || new Set(domains.map((d) => d.name)).size === domains.length;
const createSchema = z.object(cloudFields).refine((c) => uniqueDomains(c.authDomains), { message: 'auth domain names must be unique', path: ['authDomains'] });
const updateSchema = z
  .object({ id: z.string(), ...Object.fromEntries(Object.entries(cloudFields).map(([k, v]) => [k, v.nullish()])) } as {
    id: z.ZodString;
  } & { [K in keyof typeof cloudFields]: z.ZodOptional<z.ZodNullable<(typeof cloudFields)[K]>> })
  .refine((c) => uniqueDomains(c.authDomains), { message: 'auth domain names must be unique', path: ['authDomains'] });

const CloudAuthDomainInput = builder.inputType('CloudAuthDomainInput', {
  fields: (t) => ({
    name: t.string({ required: true, description: 'OpenStack domain name' }),
    domainId: t.string(),
    username: t.string({ required: true }),
    password: t.string({ description: 'Sealed at rest, never returned. Required for a new domain; omit to keep the stored one' }),
    defaultProject: t.string({ required: true }),
  }),
});

const CloudCreateInput = builder.inputType('CloudCreateInput', {
  fields: (t) => ({
    name: t.string({ required: true }),
    keystoneUrl: t.string({ required: true, description: 'http(s) URL whose path ends in /v3' }),
    region: t.string({ required: true }),
    endpointInterface: t.field({ type: EndpointInterfaceEnum, defaultValue: 'INTERNAL' }),
    mode: t.field({ type: CloudModeEnum, defaultValue: 'DISK_ATTACHMENT' }),
    downloadImage: t.boolean({ defaultValue: false }),
    keepLastSnapshot: t.boolean({ defaultValue: false, description: "Keep each volume's last backup snapshot instead of deleting it" }),
    domainScoped: t.boolean({ defaultValue: false }),
    nodeConfigurationId: t.id(),
    authDomains: t.field({ type: [CloudAuthDomainInput], required: true }),
  }),
});

const CloudUpdateInput = builder.inputType('CloudUpdateInput', {
  fields: (t) => ({
    id: t.id({ required: true }),
    name: t.string(),
    keystoneUrl: t.string(),
    region: t.string(),
    endpointInterface: t.field({ type: EndpointInterfaceEnum }),
    mode: t.field({ type: CloudModeEnum }),
    downloadImage: t.boolean(),
    keepLastSnapshot: t.boolean(),
    domainScoped: t.boolean(),
    nodeConfigurationId: t.id({ description: 'The node configuration serving this cloud' }),
    authDomains: t.field({ type: [CloudAuthDomainInput], description: 'Replaces the set (matched by name; omit a password to keep it)' }),
  }),
});

const CloudPayload = payload('CloudPayload', 'cloud', CloudRef);

type DomainInput = z.infer<typeof authDomainSchema>;

builder.mutationField('cloudCreate', (t) =>
  t.field({
    type: CloudPayload,
    authScopes: ADMIN,
    args: { input: t.arg({ type: CloudCreateInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      mutate(ctx, async (em) => {
        const v = validate(createSchema, input);
        const nodeConfiguration = v.nodeConfigurationId ? await loadRef(em, ctx, NodeConfiguration, 'NodeConfiguration', v.nodeConfigurationId, ['nodeConfigurationId']) : undefined;
        const cloud = await createCloud(em, (s) => ctx.services.secrets.seal(s), { ...v, nodeConfiguration });
        return {
          result: { cloud },
          audit: { action: 'cloudCreate', objectType: 'Cloud', objectId: cloud.id, details: { name: v.name, keystoneUrl: v.keystoneUrl, region: v.region, authDomains: v.authDomains.map((d) => d.name) } },
        };
      }),
  }),
);

builder.mutationField('cloudUpdate', (t) =>
  t.field({
    type: CloudPayload,
    authScopes: ADMIN,
    args: { input: t.arg({ type: CloudUpdateInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      mutate(ctx, async (em) => {
        const v = validate(updateSchema, input);
        const cloud = await loadRef(em, ctx, Cloud, 'Cloud', v.id, ['id']);
        const changes: Partial<Cloud> = {};
        for (const key of ['name', 'keystoneUrl', 'region', 'endpointInterface', 'mode', 'downloadImage', 'keepLastSnapshot', 'domainScoped'] as const) {
          if (v[key] != null) (changes as Record<string, unknown>)[key] = v[key];
        }
        if (v.nodeConfigurationId != null) changes.nodeConfiguration = await loadRef(em, ctx, NodeConfiguration, 'NodeConfiguration', v.nodeConfigurationId, ['nodeConfigurationId']);
        em.assign(cloud, changes);
        if (v.authDomains != null) {
          const existing = await em.find(CloudAuthDomain, { cloud: cloud.id });
          await setAuthDomains(em, (s) => ctx.services.secrets.seal(s), cloud, v.authDomains as DomainInput[], existing);
        }
        return {
          result: { cloud },
          audit: { action: 'cloudUpdate', objectType: 'Cloud', objectId: cloud.id, details: { changed: Object.keys(changes).concat(v.authDomains != null ? ['authDomains'] : []) } },
        };
      }),
  }),
);

builder.mutationField('cloudDelete', (t) =>
  t.field({
    type: DeletePayload,
    description: 'Deletes a cloud and its inventory; refused (IN_USE) while catalogued backups of it exist',
    authScopes: ADMIN,
    args: { input: t.arg({ type: DeleteInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      mutate(ctx, async (em) => {
        const cloud = await loadRef(em, ctx, Cloud, 'Cloud', input.id, ['id']);
        const id = cloud.id;
        // Deleting would cascade to the backup catalog: make the admin delete (expire) backups first.
        const backups = await em.count(Backup, { cloud: id, state: { $ne: 'DELETED' } });
        if (backups > 0) throw UserErrorException.of('IN_USE', `the cloud still has ${backups} catalogued backups`, ['input', 'id']);
        await em.nativeDelete(Cloud, { id });
        return { result: { deletedId: toGlobalId('Cloud', id) }, audit: { action: 'cloudDelete', objectType: 'Cloud', objectId: id, details: { name: cloud.name } } };
      }),
  }),
);

// --- hypervisors -------------------------------------------------------------------------

const hypervisorsSchema = z.object({
  hypervisorIds: idList.min(1, 'at least one hypervisor'),
  sshUser: shortText.min(1).nullish(),
  sshPassword: secret.nullish(),
  sshKeyPath: z.string().max(4096).refine((p) => p.startsWith('/'), 'must be an absolute path').nullish(),
  sshPort: z.number().int().min(1).max(65535).nullish(),
  commandPrefix: z.string().max(1024).nullish(),
  netcatPort: z.number().int().min(0).max(65535).nullish(),
  nodeConfigurationId: z.string().nullish(),
});

const HypervisorsConfigureInput = builder.inputType('HypervisorsConfigureInput', {
  description: 'SSH settings for many hypervisors at once; omitted fields are left as they are',
  fields: (t) => ({
    hypervisorIds: t.idList({ required: true }),
    sshUser: t.string(),
    sshPassword: t.string({ description: 'Sealed at rest, never returned' }),
    sshKeyPath: t.string({ description: 'Absolute path of the private key on the data movers' }),
    sshPort: t.int(),
    commandPrefix: t.string({ description: 'e.g. `docker exec nova_libvirt`' }),
    netcatPort: t.int({ description: 'Move disk data over a plain TCP relay on this port of the hypervisor instead of SSH: faster, unencrypted, for trusted networks only; 0 goes back to SSH' }),
    nodeConfigurationId: t.id(),
  }),
});

const HypervisorsPayload = builder.objectRef<{ hypervisors?: Hypervisor[]; userErrors: UserError[] }>('HypervisorsPayload').implement({
  fields: (t) => ({
    hypervisors: t.field({ type: [HypervisorRef], nullable: true, resolve: (p) => p.hypervisors ?? null }),
    userErrors: t.field({ type: [UserErrorRef], resolve: (p) => p.userErrors }),
  }),
});

builder.mutationField('hypervisorsConfigure', (t) =>
  t.field({
    type: HypervisorsPayload,
    authScopes: ADMIN,
    args: { input: t.arg({ type: HypervisorsConfigureInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      mutate(ctx, async (em) => {
        const v = validate(hypervisorsSchema, input);
        const hypervisors = await loadRefs(em, ctx, Hypervisor, 'Hypervisor', v.hypervisorIds, ['hypervisorIds']);
        const nodeConfiguration = v.nodeConfigurationId ? await loadRef(em, ctx, NodeConfiguration, 'NodeConfiguration', v.nodeConfigurationId, ['nodeConfigurationId']) : undefined;
        for (const h of hypervisors) {
          em.assign(h, {
            ...(v.sshUser != null ? { sshUser: v.sshUser } : {}),
            ...(v.sshPassword != null ? { sshPassword: ctx.services.secrets.seal(v.sshPassword) } : {}),
            ...(v.sshKeyPath != null ? { sshKeyPath: v.sshKeyPath } : {}),
            ...(v.sshPort != null ? { sshPort: v.sshPort } : {}),
            ...(v.commandPrefix != null ? { commandPrefix: v.commandPrefix } : {}),
            ...(v.netcatPort != null ? { netcatPort: v.netcatPort || null } : {}),
            ...(nodeConfiguration ? { nodeConfiguration } : {}),
          });
        }
        return {
          result: { hypervisors },
          audit: {
            action: 'hypervisorsConfigure', objectType: 'Hypervisor', objectId: hypervisors[0]!.id,
            details: { hypervisors: hypervisors.map((h) => h.hostname), sshUser: v.sshUser, sshPasswordChanged: v.sshPassword != null, sshPort: v.sshPort, netcatPort: v.netcatPort },
          },
        };
      }),
  }),
);

// --- zones and volume types --------------------------------------------------------------

const zoneSchema = z.object({
  id: z.string(),
  storageProviderId: z.string().nullish(),
  clearStorageProvider: z.boolean().nullish(),
  nodeConfigurationId: z.string().nullish(),
  visibility: z.enum(Visibilities).nullish(),
  projectIds: idList.nullish(),
});

const AvailabilityZoneUpdateInput = builder.inputType('AvailabilityZoneUpdateInput', {
  fields: (t) => ({
    id: t.id({ required: true }),
    storageProviderId: t.id({ description: 'The Ceph storage provider behind this zone' }),
    clearStorageProvider: t.boolean({ description: 'Unmap the storage provider' }),
    nodeConfigurationId: t.id(),
    visibility: t.field({ type: VisibilityEnum, description: 'Which projects may restore into this zone' }),
    projectIds: t.idList({ description: 'The chosen projects (replaces the set)' }),
  }),
});

builder.mutationField('availabilityZoneUpdate', (t) =>
  t.field({
    type: payload('AvailabilityZonePayload', 'availabilityZone', AvailabilityZoneRef),
    authScopes: ADMIN,
    args: { input: t.arg({ type: AvailabilityZoneUpdateInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      mutate(ctx, async (em) => {
        const v = validate(zoneSchema, input);
        const zone = await loadRef(em, ctx, AvailabilityZone, 'AvailabilityZone', v.id, ['id']);
        if (v.storageProviderId != null && v.clearStorageProvider) throw UserErrorException.of('INVALID', 'give storageProviderId or clearStorageProvider, not both', ['input', 'clearStorageProvider']);
        if (v.storageProviderId != null) zone.storageProvider = await loadRef(em, ctx, StorageProvider, 'StorageProvider', v.storageProviderId, ['storageProviderId']);
        if (v.clearStorageProvider) zone.storageProvider = undefined;
        if (v.nodeConfigurationId != null) zone.nodeConfiguration = await loadRef(em, ctx, NodeConfiguration, 'NodeConfiguration', v.nodeConfigurationId, ['nodeConfigurationId']);
        if (v.visibility != null) zone.visibility = v.visibility;
        if (v.projectIds != null) {
          await zone.projects.init();
          zone.projects.set(await loadRefs(em, ctx, Project, 'Project', v.projectIds, ['projectIds']));
        }
        return {
          result: { availabilityZone: zone },
          audit: { action: 'availabilityZoneUpdate', objectType: 'AvailabilityZone', objectId: zone.id, details: { name: zone.name, storageProvider: zone.storageProvider?.id ?? null, visibility: zone.visibility } },
        };
      }),
  }),
);

const VolumeTypeUpdateInput = builder.inputType('VolumeTypeUpdateInput', {
  fields: (t) => ({
    id: t.id({ required: true }),
    cephPool: t.string({ description: 'The Ceph pool behind this volume type; null to unmap' }),
  }),
});

builder.mutationField('volumeTypeUpdate', (t) =>
  t.field({
    type: payload('VolumeTypePayload', 'volumeType', VolumeTypeRef),
    authScopes: ADMIN,
    args: { input: t.arg({ type: VolumeTypeUpdateInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      mutate(ctx, async (em) => {
        const v = validate(z.object({ id: z.string(), cephPool: z.string().regex(/^[A-Za-z0-9._-]{1,255}$/, 'a Ceph pool name: letters, digits, . _ -').nullish() }), input);
        const volumeType = await loadRef(em, ctx, VolumeType, 'VolumeType', v.id, ['id']);
        volumeType.cephPool = v.cephPool ?? undefined;
        return {
          result: { volumeType },
          audit: { action: 'volumeTypeUpdate', objectType: 'VolumeType', objectId: volumeType.id, details: { name: volumeType.name, cephPool: v.cephPool ?? null } },
        };
      }),
  }),
);
