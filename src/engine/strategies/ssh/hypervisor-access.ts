// Which hypervisor runs a Nova server and how to reach it over SSH: Nova's
// `OS-EXT-SRV-ATTR:hypervisor_hostname` (or `host`) names the Hypervisor row holding the SSH
// settings (short names match FQDNs); its host key is pinned on first contact. Used by SSH
// transfer backups and by restores that write a root disk on the hypervisor.
import type { EntityManager } from '@mikro-orm/postgresql';
import { Hypervisor } from '../../../db/entities/index.ts';
import type { SecretBox } from '../../../db/secrets.ts';
import type { NovaServer } from '../../../openstack/index.ts';
import type { HypervisorCredentials } from './connection.ts';

export class HypervisorAccessError extends Error {}

export function hasSshSettings(hv: Hypervisor): boolean {
  return !!hv.sshUser && (!!hv.sshPassword || !!hv.sshKeyPath);
}

/** The Hypervisor row (of `cloudId`) Nova placed `server` on, with its SSH settings. */
export async function hypervisorOf(em: EntityManager, cloudId: string, server: NovaServer, what = `instance ${server.name}`): Promise<Hypervisor> {
  const names = [server['OS-EXT-SRV-ATTR:hypervisor_hostname'], server['OS-EXT-SRV-ATTR:host']].filter((n): n is string => !!n);
  if (names.length === 0) throw new HypervisorAccessError(`Nova does not say which host runs ${what} (admin credentials needed)`);
  const short = (n: string) => n.split('.')[0]!.toLowerCase();
  const rows = await em.find(Hypervisor, { cloud: cloudId }, { filters: false });
  const hv = rows.find((h) => names.includes(h.hostname)) ?? rows.find((h) => names.some((n) => short(n) === short(h.hostname)));
  if (!hv) throw new HypervisorAccessError(`hypervisor ${names[0]} of ${what} is not in the inventory: sync the cloud`);
  if (!hasSshSettings(hv)) {
    throw new HypervisorAccessError(`hypervisor ${hv.hostname} has no SSH settings (user and password or key path) for SSH transfer`);
  }
  return hv;
}

export function credentialsOf(hv: Hypervisor, deps: { secrets: SecretBox }): HypervisorCredentials {
  return {
    host: hv.hostIp ?? hv.hostname,
    port: hv.sshPort,
    username: hv.sshUser!,
    password: hv.sshPassword ? deps.secrets.open(hv.sshPassword) : undefined,
    privateKeyPath: hv.sshKeyPath ?? undefined,
    hostKeyFingerprint: hv.pinnedHostKey ?? null,
    commandPrefix: hv.commandPrefix ?? undefined,
  };
}
