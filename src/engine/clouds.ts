// Registering a cloud: the row and its auth domains with sealed passwords. The `cloudCreate`
// and `cloudUpdate` mutations and `serve --demo` share this, so a cloud is stored one way only.
import type { EntityManager } from '@mikro-orm/postgresql';
import { Cloud, CloudAuthDomain, type CloudMode, type EndpointInterface, type NodeConfiguration } from '../db/entities/index.ts';
import { UserErrorException } from '../graphql/user-errors.ts';

export type AuthDomainInput = { name: string; domainId?: string | null; username: string; password?: string | null; defaultProject: string };

export type NewCloud = {
  name: string;
  keystoneUrl: string;
  region: string;
  endpointInterface: EndpointInterface;
  mode: CloudMode;
  downloadImage: boolean;
  keepLastSnapshot?: boolean;
  domainScoped: boolean;
  nodeConfiguration?: NodeConfiguration;
  authDomains: AuthDomainInput[];
};

type Seal = (plain: string) => string;

/** Makes the cloud's auth domains exactly `domains`, sealing new passwords, keeping omitted ones. */
export async function setAuthDomains(em: EntityManager, seal: Seal, cloud: Cloud, domains: AuthDomainInput[], existing: CloudAuthDomain[]) {
  const byName = new Map(existing.map((d) => [d.name, d]));
  for (const [i, d] of domains.entries()) {
    const old = byName.get(d.name);
    if (!old && !d.password) throw UserErrorException.of('INVALID', `auth domain ${JSON.stringify(d.name)} needs a password`, ['input', 'authDomains', String(i), 'password']);
    const fields = { domainId: d.domainId ?? undefined, username: d.username, defaultProject: d.defaultProject, ...(d.password ? { password: seal(d.password) } : {}) };
    if (old) em.assign(old, fields);
    else em.create(CloudAuthDomain, { cloud, name: d.name, password: seal(d.password!), ...fields });
    byName.delete(d.name);
  }
  for (const gone of byName.values()) em.remove(gone);
}

/** A new cloud with its auth domains (validated input; flushed by the caller's transaction). */
export async function createCloud(em: EntityManager, seal: Seal, v: NewCloud): Promise<Cloud> {
  const cloud = em.create(Cloud, {
    name: v.name, keystoneUrl: v.keystoneUrl, region: v.region, endpointInterface: v.endpointInterface, mode: v.mode,
    downloadImage: v.downloadImage, keepLastSnapshot: v.keepLastSnapshot ?? false, domainScoped: v.domainScoped, nodeConfiguration: v.nodeConfiguration,
  });
  await setAuthDomains(em, seal, cloud, v.authDomains, []);
  return cloud;
}
