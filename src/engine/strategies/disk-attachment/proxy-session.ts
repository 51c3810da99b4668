// Which credentials reach the proxy VM: temporary volumes are created in the session's project
// and attached to the proxy, so the session is scoped to the project that owns the proxy VM,
// with the credential set of that project's domain. When inventory does not know the proxy VM
// (not synced yet), the first auth domain's default project is used, as before.
import type { EntityManager } from '@mikro-orm/postgresql';
import { CloudAuthDomain, Instance, type Cloud, type Project } from '../../../db/entities/index.ts';
import type { OpenStackCloud, Session } from '../../../openstack/index.ts';

/** The credential set for a project: the auth domain whose domain ID (or name) is the project's. */
export async function authDomainOf(em: EntityManager, cloud: Cloud, project: Project): Promise<string | undefined> {
  const domains = await em.find(CloudAuthDomain, { cloud: cloud.id }, { filters: false, orderBy: { createdAt: 'asc' } });
  const match = domains.find((d) => d.domainId && d.domainId === project.domainId)
    ?? domains.find((d) => d.name.toLowerCase() === (project.domainId ?? '').toLowerCase())
    ?? domains[0];
  return match?.name;
}

export async function proxySession(em: EntityManager, connection: OpenStackCloud, cloud: Cloud, proxyServerId: string): Promise<Session> {
  const proxy = await em.findOne(Instance, { cloud: cloud.id, externalId: proxyServerId }, { populate: ['project'], filters: false });
  if (!proxy) return connection.defaultSession();
  const domain = await authDomainOf(em, cloud, proxy.project);
  return domain ? connection.projectSession(domain, proxy.project.externalId) : connection.defaultSession();
}
