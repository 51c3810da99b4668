// A cloud's reference data copied by inventory sync: flavors, networks, images, volume types.
import { BigIntType, EntitySchema, type Opt } from '@mikro-orm/core';
import { BaseEntity } from './base.ts';
import type { Cloud } from './cloud.ts';

export class Flavor extends BaseEntity {
  cloud!: Cloud;
  externalId!: string;
  name!: string;
  vcpus: number & Opt = 0;
  ramMib: number & Opt = 0;
  diskGib: number & Opt = 0;
  ephemeralGib: number & Opt = 0;
}

export class Network extends BaseEntity {
  cloud!: Cloud;
  externalId!: string;
  name!: string;
  /** Owner project's OpenStack ID (networks may be shared). */
  projectExternalId?: string;
  shared: boolean & Opt = false;
}

export class Image extends BaseEntity {
  cloud!: Cloud;
  externalId!: string;
  name!: string;
  sizeBytes?: bigint;
  diskFormat?: string;
  status?: string;
  present: boolean & Opt = true;
}

export class VolumeType extends BaseEntity {
  cloud!: Cloud;
  externalId!: string;
  name!: string;
  /** The Ceph pool behind this type, when it is RBD-backed. */
  cephPool?: string;
}

const cloudRef = { kind: 'm:1', entity: 'Cloud', deleteRule: 'cascade' } as const;

export const FlavorSchema = new EntitySchema<Flavor, BaseEntity>({
  class: Flavor,
  extends: 'BaseEntity',
  uniques: [{ properties: ['cloud', 'externalId'] }],
  properties: {
    cloud: cloudRef,
    externalId: { type: 'string', length: 255 },
    name: { type: 'string', length: 255 },
    vcpus: { type: 'integer' },
    ramMib: { type: 'integer' },
    diskGib: { type: 'integer' },
    ephemeralGib: { type: 'integer' },
  },
});

export const NetworkSchema = new EntitySchema<Network, BaseEntity>({
  class: Network,
  extends: 'BaseEntity',
  uniques: [{ properties: ['cloud', 'externalId'] }],
  properties: {
    cloud: cloudRef,
    externalId: { type: 'string', length: 255 },
    name: { type: 'string', length: 255 },
    projectExternalId: { type: 'string', length: 255, nullable: true },
    shared: { type: 'boolean' },
  },
});

export const ImageSchema = new EntitySchema<Image, BaseEntity>({
  class: Image,
  extends: 'BaseEntity',
  uniques: [{ properties: ['cloud', 'externalId'] }],
  properties: {
    cloud: cloudRef,
    externalId: { type: 'string', length: 255 },
    name: { type: 'string', length: 255 },
    sizeBytes: { type: new BigIntType('bigint'), nullable: true },
    diskFormat: { type: 'string', length: 32, nullable: true },
    status: { type: 'string', length: 32, nullable: true },
    present: { type: 'boolean' },
  },
});

export const VolumeTypeSchema = new EntitySchema<VolumeType, BaseEntity>({
  class: VolumeType,
  extends: 'BaseEntity',
  uniques: [{ properties: ['cloud', 'externalId'] }],
  properties: {
    cloud: cloudRef,
    externalId: { type: 'string', length: 255 },
    name: { type: 'string', length: 255 },
    cephPool: { type: 'string', length: 255, nullable: true },
  },
});
