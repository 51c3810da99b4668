// A compute host. SSH settings are used by the SSH-transfer strategy; the host key is pinned
// on first contact.
import { EntitySchema, type Opt } from '@mikro-orm/core';
import { BaseEntity, type Sealed } from './base.ts';
import type { AvailabilityZone } from './availability-zone.ts';
import type { Cloud } from './cloud.ts';
import type { NodeConfiguration } from './node-configuration.ts';

export class Hypervisor extends BaseEntity {
  cloud!: Cloud;
  zone?: AvailabilityZone;
  /** Nova's hypervisor ID. */
  externalId!: string;
  hostname!: string;
  hostIp?: string;
  hypervisorType?: string;
  sshUser?: string;
  sshPassword?: Sealed;
  sshKeyPath?: string;
  sshPort: number & Opt = 22;
  /** e.g. `docker exec nova_libvirt` for OpenStack in containers. */
  commandPrefix?: string;
  /** Bulk data over a plain TCP relay on this port of the hypervisor (trusted networks); none: through SSH. */
  netcatPort?: number | null;
  pinnedHostKey?: string;
  nodeConfiguration?: NodeConfiguration;
  present: boolean & Opt = true;
}

export const HypervisorSchema = new EntitySchema<Hypervisor, BaseEntity>({
  class: Hypervisor,
  extends: 'BaseEntity',
  uniques: [{ properties: ['cloud', 'externalId'] }],
  properties: {
    cloud: { kind: 'm:1', entity: 'Cloud', deleteRule: 'cascade' },
    zone: { kind: 'm:1', entity: 'AvailabilityZone', nullable: true, deleteRule: 'set null' },
    externalId: { type: 'string', length: 255 },
    hostname: { type: 'string', length: 255 },
    hostIp: { type: 'string', length: 255, nullable: true },
    hypervisorType: { type: 'string', length: 64, nullable: true },
    sshUser: { type: 'string', length: 255, nullable: true },
    sshPassword: { type: 'text', nullable: true },
    sshKeyPath: { type: 'string', length: 4096, nullable: true },
    sshPort: { type: 'integer' },
    commandPrefix: { type: 'string', length: 1024, nullable: true },
    netcatPort: { type: 'integer', nullable: true },
    pinnedHostKey: { type: 'text', nullable: true },
    nodeConfiguration: { kind: 'm:1', entity: 'NodeConfiguration', nullable: true, deleteRule: 'set null' },
    present: { type: 'boolean' },
  },
});
