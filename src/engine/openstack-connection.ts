// A cloud row → an OpenStack connection: the auth domains' passwords are opened from their
// sealed form here, in memory, and go nowhere else.
import type { Cloud } from '../db/entities/cloud.ts';
import type { SecretBox } from '../db/secrets.ts';
import { OpenStackCloud, type EndpointInterface, type HttpOptions } from '../openstack/index.ts';

/** The cloud's auth domains must be loaded (`populate: ['authDomains']`). */
export function connectCloud(cloud: Cloud, secrets: SecretBox, http?: HttpOptions): OpenStackCloud {
  const domains = cloud.authDomains.getItems();
  if (domains.length === 0) throw new Error(`cloud ${cloud.name} has no auth domain`);
  return new OpenStackCloud({
    keystoneUrl: cloud.keystoneUrl,
    region: cloud.region,
    iface: cloud.endpointInterface.toLowerCase() as EndpointInterface,
    domainScoped: cloud.domainScoped,
    http,
    authDomains: domains.map((d) => ({
      name: d.name,
      domainId: d.domainId ?? undefined,
      username: d.username,
      password: secrets.open(d.password),
      defaultProject: d.defaultProject,
    })),
  });
}
