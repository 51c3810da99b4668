// `strongbox service-account …`: bootstrap and manage API clients from a shell, on the same
// database `serve` uses.
//   create --name NAME --role ROLE [--project ID]...   prints {"clientId", "clientSecret"}
//   list                                               prints one JSON object per line
//   disable|enable ACCOUNT                             by name, client ID or database ID
//   rotate-secret ACCOUNT                              prints {"clientId", "clientSecret"}
// `--project` takes a project's GraphQL global ID or its OpenStack project ID.
import { parseArgs } from 'node:util';
import { loadConfig } from '../config.ts';
import { Roles, ServiceAccount, type Role } from '../db/entities/index.ts';
import { systemFork } from '../db/orm.ts';
import { startServices } from '../services.ts';
import {
  auditAccountChange, createServiceAccount, findServiceAccount, resolveProjectIds, rotateSecret, ServiceAccountError, setEnabled,
} from './service-accounts.ts';

const usage = `usage: strongbox service-account <command>
  create --name NAME --role ${Roles.join('|')} [--project ID]...
  list
  disable ACCOUNT | enable ACCOUNT | rotate-secret ACCOUNT   (ACCOUNT: name or client ID)
`;

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  let parsed;
  try {
    parsed = parseArgs({
      args: rest,
      allowPositionals: true,
      options: { name: { type: 'string' }, role: { type: 'string' }, project: { type: 'string', multiple: true } },
    });
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n${usage}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (!sub || !['create', 'list', 'disable', 'enable', 'rotate-secret'].includes(sub)) {
    process.stderr.write(usage);
    return 2;
  }
  if (sub === 'create' && (!values.name || !values.role || !(Roles as readonly string[]).includes(values.role))) {
    process.stderr.write(`create needs --name and --role (${Roles.join(', ')})\n${usage}`);
    return 2;
  }
  if (['disable', 'enable', 'rotate-secret'].includes(sub) && positionals.length !== 1) {
    process.stderr.write(`${sub} needs one ACCOUNT (name or client ID)\n${usage}`);
    return 2;
  }

  const services = await startServices(loadConfig());
  const out = (v: unknown) => process.stdout.write(`${JSON.stringify(v)}\n`);
  try {
    const em = systemFork(services.orm);
    switch (sub) {
      case 'create': {
        const created = await em.transactional(async (tx) => {
          const projectIds = await resolveProjectIds(tx, values.project ?? []);
          const created = await createServiceAccount(tx, { name: values.name!, role: values.role as Role, projectIds });
          auditAccountChange(tx, null, 'service-account.create', created.account, { projectIds });
          await tx.flush();
          return created;
        });
        out({ clientId: created.clientId, clientSecret: created.clientSecret });
        break;
      }
      case 'list': {
        const accounts = await em.find(ServiceAccount, {}, { populate: ['projects'], orderBy: { createdAt: 'asc' } });
        for (const a of accounts) {
          out({
            name: a.name, role: a.role, clientId: a.clientId, enabled: a.enabled,
            projects: a.projects.getItems().map((p) => p.externalId),
            createdAt: a.createdAt, lastUsedAt: a.lastUsedAt ?? null,
          });
        }
        break;
      }
      case 'disable':
      case 'enable': {
        const account = await findServiceAccount(em, positionals[0]!);
        await setEnabled(em, account, sub === 'enable');
        auditAccountChange(em, null, 'service-account.update', account, { enabled: account.enabled });
        await em.flush();
        out({ clientId: account.clientId, enabled: account.enabled });
        break;
      }
      case 'rotate-secret': {
        const account = await findServiceAccount(em, positionals[0]!);
        const credentials = await rotateSecret(em, account);
        auditAccountChange(em, null, 'service-account.rotate-secret', account);
        await em.flush();
        out(credentials);
        break;
      }
    }
    return 0;
  } catch (e) {
    if (e instanceof ServiceAccountError) {
      process.stderr.write(`strongbox service-account ${sub}: ${e.message}\n`);
      return 1;
    }
    throw e;
  } finally {
    await services.close();
  }
}
