// A Nova server. Inventory sync keeps the row when the server is gone from the cloud
// (`present: false`), so its backups stay visible and restorable by its tenant.
import { BigIntType, Collection, EntitySchema, type Opt } from '@mikro-orm/core';
import { BaseEntity } from './base.ts';
import type { AvailabilityZone } from './availability-zone.ts';
import type { Flavor, Image } from './catalog.ts';
import type { Cloud } from './cloud.ts';
import type { Hypervisor } from './hypervisor.ts';
import type { Policy } from './policy.ts';
import type { Project } from './project.ts';

export class Instance extends BaseEntity {
  cloud!: Cloud;
  project!: Project;
  zone?: AvailabilityZone;
  hypervisor?: Hypervisor;
  flavor?: Flavor;
  image?: Image;
  externalId!: string;
  name!: string;
  status?: string;
  present: boolean & Opt = true;
  /** The policy assigned directly (rules may assign one too; see the scheduler). */
  policy?: Policy;
  /** The last metadata seen by inventory sync (server, flavor, addresses...). */
  metadata: Record<string, unknown> & Opt = {};
  volumes = new Collection<Volume>(this);
  lastSeenAt?: Date;
}

export const VolumeKinds = ['CINDER', 'NOVA', 'EPHEMERAL'] as const;
export type VolumeKind = (typeof VolumeKinds)[number];

/** A disk of an instance: a Cinder volume, a Nova root disk or an ephemeral disk. */
export class Volume extends BaseEntity {
  cloud!: Cloud;
  project!: Project;
  instance?: Instance;
  externalId!: string;
  name!: string;
  kind: VolumeKind & Opt = 'CINDER';
  sizeBytes: bigint & Opt = 0n;
  volumeType?: import('./catalog.ts').VolumeType;
  /** Boot order (0 = root), null when not bootable. */
  bootIndex?: number;
  device?: string;
  present: boolean & Opt = true;
}

export const InstanceSchema = new EntitySchema<Instance, BaseEntity>({
  class: Instance,
  extends: 'BaseEntity',
  uniques: [{ properties: ['cloud', 'externalId'] }],
  indexes: [{ properties: ['project'] }],
  properties: {
    cloud: { kind: 'm:1', entity: 'Cloud', deleteRule: 'cascade' },
    project: { kind: 'm:1', entity: 'Project', deleteRule: 'cascade' },
    zone: { kind: 'm:1', entity: 'AvailabilityZone', nullable: true, deleteRule: 'set null' },
    hypervisor: { kind: 'm:1', entity: 'Hypervisor', nullable: true, deleteRule: 'set null' },
    flavor: { kind: 'm:1', entity: 'Flavor', nullable: true, deleteRule: 'set null' },
    image: { kind: 'm:1', entity: 'Image', nullable: true, deleteRule: 'set null' },
    externalId: { type: 'string', length: 255 },
    name: { type: 'string', length: 255 },
    status: { type: 'string', length: 64, nullable: true },
    present: { type: 'boolean' },
    policy: { kind: 'm:1', entity: 'Policy', nullable: true, deleteRule: 'set null' },
    metadata: { type: 'json' },
    volumes: { kind: '1:m', entity: () => Volume, mappedBy: 'instance' },
    lastSeenAt: { type: 'Date', columnType: 'timestamptz', nullable: true },
  },
});

export const VolumeSchema = new EntitySchema<Volume, BaseEntity>({
  class: Volume,
  extends: 'BaseEntity',
  uniques: [{ properties: ['cloud', 'externalId'] }],
  indexes: [{ properties: ['instance'] }, { properties: ['project'] }],
  properties: {
    cloud: { kind: 'm:1', entity: 'Cloud', deleteRule: 'cascade' },
    project: { kind: 'm:1', entity: 'Project', deleteRule: 'cascade' },
    instance: { kind: 'm:1', entity: () => Instance, nullable: true, deleteRule: 'set null' },
    externalId: { type: 'string', length: 255 },
    name: { type: 'string', length: 255 },
    kind: { enum: true, items: () => [...VolumeKinds] },
    sizeBytes: { type: new BigIntType('bigint') },
    volumeType: { kind: 'm:1', entity: 'VolumeType', nullable: true, deleteRule: 'set null' },
    bootIndex: { type: 'integer', nullable: true },
    device: { type: 'string', length: 255, nullable: true },
    present: { type: 'boolean' },
  },
});
