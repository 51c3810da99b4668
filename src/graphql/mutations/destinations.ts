// Admin mutations for backup destinations. Credentials are sealed as one JSON document and never
// returned; URLs and settings are checked to carry none. Exactly one destination is the default.
import type { EntityManager } from '@mikro-orm/postgresql';
import { BackupDestination, DestinationKinds, NodeConfiguration, Project, Visibilities, type DestinationKind } from '../../db/entities/index.ts';
import { builder } from '../builder.ts';
import { VisibilityEnum } from '../clouds.ts';
import { CompressionEnum, DestinationKindEnum } from '../destinations.ts';
import { toGlobalId } from '../node.ts';
import { BackupDestinationRef } from '../refs.ts';
import { UserErrorException } from '../user-errors.ts';
import { DeleteInput, DeletePayload, idList, loadRef, loadRefs, mutate, name, payload, secret, shortText, validate, z } from './common.ts';

/** Configuration writes: the `config:write` action of src/auth/policy.ts (ADMIN). */
const ADMIN = { can: 'config:write' as const };
const SECRET_WORD = /secret|password|passwd|token|credential|key/i;

const scheme: Record<DestinationKind, string> = { FILE_SYSTEM: 'file:', S3: 's3:', SWIFT: 'swift:' };

/** Why `url` is not a valid destination URL of `kind`, or null. */
export function destinationUrlProblem(kind: DestinationKind, raw: string): string | null {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return 'not a URL';
  }
  if (u.protocol !== scheme[kind]) return `a ${kind} destination URL starts with ${scheme[kind]}//`;
  if (u.username || u.password) return 'credentials do not belong in the URL; give them in `credentials`';
  for (const k of u.searchParams.keys()) if (SECRET_WORD.test(k)) return `URL parameter ${JSON.stringify(k)} looks like a secret; give it in \`credentials\``;
  const httpParam = (p: string) => {
    const v = u.searchParams.get(p);
    if (v === null) return true;
    try {
      const h = new URL(v);
      return (h.protocol === 'http:' || h.protocol === 'https:') && !h.username && !h.password;
    } catch {
      return false;
    }
  };
  if (kind === 'FILE_SYSTEM') {
    if (u.host) return 'a file URL has no host: file:///absolute/path';
    if (u.pathname === '/' || u.pathname === '') return 'give a folder below /';
  } else if (kind === 'S3') {
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(u.hostname)) return 'the bucket name (s3://BUCKET/prefix) is not a valid S3 bucket name';
    if (!httpParam('endpoint')) return 'endpoint must be an http(s) URL';
  } else {
    if (!u.hostname) return 'give a container: swift://CONTAINER/prefix';
    if (!u.searchParams.get('auth')) return 'give the Keystone URL: swift://container/prefix?auth=https://…/v3';
    if (!httpParam('auth') || !/\/v3\/?$/.test(new URL(u.searchParams.get('auth')!).pathname)) return 'auth must be an http(s) Keystone v3 URL';
  }
  return null;
}

const settingsSchema = z
  .record(z.string().max(100), z.union([z.string().max(2048), z.number(), z.boolean(), z.null()]))
  .refine((s) => Object.keys(s).length <= 50, 'at most 50 settings')
  .refine((s) => !Object.keys(s).some((k) => SECRET_WORD.test(k)), 'settings must not hold secrets; give them in `credentials`');

const credentialsSchema = z.object({
  accessKeyId: shortText.min(1).nullish(),
  secretAccessKey: secret.nullish(),
  username: shortText.min(1).nullish(),
  password: secret.nullish(),
  userDomain: shortText.nullish(),
  projectName: shortText.nullish(),
});

const chunkSize = z
  .number()
  .int()
  .refine((n) => n >= 64 * 1024 && n <= 64 * 1024 * 1024 && (n & (n - 1)) === 0, 'a power of two between 64 KiB and 64 MiB');

const fields = {
  name,
  kind: z.enum(DestinationKinds),
  url: z.string().max(2048, 'at most 2048 characters'),
  settings: settingsSchema,
  credentials: credentialsSchema.nullish(),
  encryption: z.boolean(),
  compression: z.enum(['ZSTD', 'NONE']),
  chunkSizeBytes: chunkSize,
  nodeConfigurationIds: idList,
  visibility: z.enum(Visibilities),
  projectIds: idList,
  isDefault: z.boolean(),
};

function checkUrlAndCredentials(kind: DestinationKind, url: string, credentials: z.infer<typeof credentialsSchema> | null | undefined) {
  const problem = destinationUrlProblem(kind, url);
  if (problem) throw UserErrorException.of('INVALID_URL', problem, ['input', 'url']);
  if (!credentials) return;
  const has = (k: keyof typeof credentials) => credentials[k] != null;
  if (kind === 'FILE_SYSTEM') throw UserErrorException.of('INVALID', 'a FILE_SYSTEM destination takes no credentials', ['input', 'credentials']);
  if (kind === 'S3' && !(has('accessKeyId') && has('secretAccessKey'))) throw UserErrorException.of('INVALID', 'S3 credentials need accessKeyId and secretAccessKey', ['input', 'credentials']);
  if (kind === 'SWIFT' && !(has('username') && has('password'))) throw UserErrorException.of('INVALID', 'Swift credentials need username and password', ['input', 'credentials']);
}

/** Makes `d` the only default destination. */
async function makeOnlyDefault(em: EntityManager, d: BackupDestination) {
  await em.nativeUpdate(BackupDestination, { isDefault: true, id: { $ne: d.id } }, { isDefault: false });
  d.isDefault = true;
}

const DestinationCredentialsInput = builder.inputType('DestinationCredentialsInput', {
  description: 'S3: accessKeyId + secretAccessKey; Swift: username + password (+ userDomain, projectName). Sealed, never returned',
  fields: (t) => ({
    accessKeyId: t.string(),
    secretAccessKey: t.string(),
    username: t.string(),
    password: t.string(),
    userDomain: t.string(),
    projectName: t.string(),
  }),
});

const BackupDestinationCreateInput = builder.inputType('BackupDestinationCreateInput', {
  fields: (t) => ({
    name: t.string({ required: true }),
    kind: t.field({ type: DestinationKindEnum, required: true }),
    url: t.string({ required: true, description: '`file:///path`, `s3://bucket/prefix?endpoint=…&region=…`, `swift://container/prefix?auth=…/v3`' }),
    settings: t.field({ type: 'JSON', description: 'Non-secret settings: an object of strings, numbers and booleans' }),
    credentials: t.field({ type: DestinationCredentialsInput }),
    encryption: t.boolean({ defaultValue: true }),
    compression: t.field({ type: CompressionEnum, defaultValue: 'ZSTD' }),
    chunkSizeBytes: t.int({ defaultValue: 1024 * 1024 }),
    nodeConfigurationIds: t.idList({ defaultValue: [] }),
    visibility: t.field({ type: VisibilityEnum, defaultValue: 'ALL_PROJECTS' }),
    projectIds: t.idList({ defaultValue: [], description: 'The chosen projects when visibility is CHOSEN_PROJECTS' }),
    isDefault: t.boolean({ defaultValue: false, description: 'Make this the default destination (the first one always is)' }),
  }),
});

const BackupDestinationUpdateInput = builder.inputType('BackupDestinationUpdateInput', {
  fields: (t) => ({
    id: t.id({ required: true }),
    name: t.string(),
    url: t.string(),
    settings: t.field({ type: 'JSON' }),
    credentials: t.field({ type: DestinationCredentialsInput, description: 'Replaces the stored credentials' }),
    encryption: t.boolean(),
    compression: t.field({ type: CompressionEnum }),
    chunkSizeBytes: t.int(),
    nodeConfigurationIds: t.idList({ description: 'Replaces the set' }),
    visibility: t.field({ type: VisibilityEnum }),
    projectIds: t.idList({ description: 'Replaces the set' }),
    isDefault: t.boolean({ description: 'true makes it the default; to move the default, set it on another destination' }),
  }),
});

const BackupDestinationPayload = payload('BackupDestinationPayload', 'backupDestination', BackupDestinationRef);

builder.mutationField('backupDestinationCreate', (t) =>
  t.field({
    type: BackupDestinationPayload,
    authScopes: ADMIN,
    args: { input: t.arg({ type: BackupDestinationCreateInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      mutate(ctx, async (em) => {
        const v = validate(z.object(fields), { ...input, settings: input.settings ?? {} });
        checkUrlAndCredentials(v.kind, v.url, v.credentials);
        const nodeConfigurations = await loadRefs(em, ctx, NodeConfiguration, 'NodeConfiguration', v.nodeConfigurationIds, ['nodeConfigurationIds']);
        const projects = await loadRefs(em, ctx, Project, 'Project', v.projectIds, ['projectIds']);
        const d = em.create(BackupDestination, {
          name: v.name, kind: v.kind, url: v.url, settings: v.settings,
          credentials: v.credentials ? ctx.services.secrets.seal(JSON.stringify(v.credentials)) : undefined,
          encryption: v.encryption, compression: v.compression, chunkSizeBytes: v.chunkSizeBytes, visibility: v.visibility,
        });
        d.nodeConfigurations.set(nodeConfigurations);
        d.projects.set(projects);
        if (v.isDefault || (await em.count(BackupDestination, { isDefault: true })) === 0) await makeOnlyDefault(em, d);
        return {
          result: { backupDestination: d },
          audit: { action: 'backupDestinationCreate', objectType: 'BackupDestination', objectId: d.id, details: { name: v.name, kind: v.kind, url: v.url, hasCredentials: !!v.credentials, isDefault: d.isDefault } },
        };
      }),
  }),
);

builder.mutationField('backupDestinationUpdate', (t) =>
  t.field({
    type: BackupDestinationPayload,
    authScopes: ADMIN,
    args: { input: t.arg({ type: BackupDestinationUpdateInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      mutate(ctx, async (em) => {
        const { kind: _k, ...rest } = fields;
        const v = validate(z.object({ id: z.string(), ...Object.fromEntries(Object.entries(rest).map(([k, s]) => [k, s.nullish()])) }), input) as {
          id: string;
        } & { [K in keyof typeof rest]?: z.infer<(typeof rest)[K]> | null };
        const d = await loadRef(em, ctx, BackupDestination, 'BackupDestination', v.id, ['id']);
        if (v.url != null || v.credentials != null) checkUrlAndCredentials(d.kind, v.url ?? d.url, v.credentials);
        if (v.isDefault === false && d.isDefault) {
          throw UserErrorException.of('DEFAULT_REQUIRED', 'one destination must stay the default; make another one the default instead', ['input', 'isDefault']);
        }
        const changes: Record<string, unknown> = {};
        for (const key of ['name', 'url', 'settings', 'encryption', 'compression', 'chunkSizeBytes', 'visibility'] as const) if (v[key] != null) changes[key] = v[key];
        if (v.credentials != null) changes.credentials = ctx.services.secrets.seal(JSON.stringify(v.credentials));
        em.assign(d, changes);
        if (v.nodeConfigurationIds != null) {
          await d.nodeConfigurations.init();
          d.nodeConfigurations.set(await loadRefs(em, ctx, NodeConfiguration, 'NodeConfiguration', v.nodeConfigurationIds, ['nodeConfigurationIds']));
        }
        if (v.projectIds != null) {
          await d.projects.init();
          d.projects.set(await loadRefs(em, ctx, Project, 'Project', v.projectIds, ['projectIds']));
        }
        if (v.isDefault) await makeOnlyDefault(em, d);
        const changed = Object.keys(changes).filter((k) => k !== 'credentials');
        return {
          result: { backupDestination: d },
          audit: { action: 'backupDestinationUpdate', objectType: 'BackupDestination', objectId: d.id, details: { changed, credentialsChanged: v.credentials != null } },
        };
      }),
  }),
);

builder.mutationField('backupDestinationDelete', (t) =>
  t.field({
    type: DeletePayload,
    description: 'Deletes a destination from the catalog (its repository stays where it is); refused while backups point at it',
    authScopes: ADMIN,
    args: { input: t.arg({ type: DeleteInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      mutate(ctx, async (em) => {
        const d = await loadRef(em, ctx, BackupDestination, 'BackupDestination', input.id, ['id']);
        await em.nativeDelete(BackupDestination, { id: d.id });
        if (d.isDefault) {
          // Keep exactly one default: the oldest remaining destination takes over.
          const [next] = await em.find(BackupDestination, {}, { orderBy: { id: 'asc' }, limit: 1 });
          if (next) next.isDefault = true;
        }
        return { result: { deletedId: toGlobalId('BackupDestination', d.id) }, audit: { action: 'backupDestinationDelete', objectType: 'BackupDestination', objectId: d.id, details: { name: d.name } } };
      }),
  }),
);
