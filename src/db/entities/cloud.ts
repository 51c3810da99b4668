// An OpenStack cloud (a "hypervisor manager"): where Keystone is, how to reach endpoints, how
// its instances are protected, and the credential sets per auth domain.
import { Collection, EntitySchema, type Opt } from '@mikro-orm/core';
import { BaseEntity, type Sealed } from './base.ts';

export const EndpointInterfaces = ['PUBLIC', 'INTERNAL', 'ADMIN'] as const;
export type EndpointInterface = (typeof EndpointInterfaces)[number];
/** Import/export mode: how instance data leaves the cloud. */
export const CloudModes = ['DISK_ATTACHMENT', 'DISK_ATTACHMENT_CBT', 'SSH_TRANSFER'] as const;
export type CloudMode = (typeof CloudModes)[number];

export class Cloud extends BaseEntity {
  name!: string;
  keystoneUrl!: string;
  region!: string;
  endpointInterface: EndpointInterface & Opt = 'INTERNAL';
  mode: CloudMode & Opt = 'DISK_ATTACHMENT';
  downloadImage: boolean & Opt = false;
  /** Keep each volume's last backup snapshot (the previous one is deleted when a new one is kept). */
  keepLastSnapshot: boolean & Opt = false;
  domainScoped: boolean & Opt = false;
  nodeConfiguration?: import('./node-configuration.ts').NodeConfiguration;
  authDomains = new Collection<CloudAuthDomain>(this);
  lastSyncAt?: Date;
}

export class CloudAuthDomain extends BaseEntity {
  cloud!: Cloud;
  /** OpenStack domain name. */
  name!: string;
  domainId?: string;
  username!: string;
  password!: Sealed;
  defaultProject!: string;
}

export const CloudSchema = new EntitySchema<Cloud, BaseEntity>({
  class: Cloud,
  extends: 'BaseEntity',
  properties: {
    name: { type: 'string', length: 200, unique: true },
    keystoneUrl: { type: 'string', length: 2048 },
    region: { type: 'string', length: 255 },
    endpointInterface: { enum: true, items: () => [...EndpointInterfaces] },
    mode: { enum: true, items: () => [...CloudModes] },
    downloadImage: { type: 'boolean' },
    keepLastSnapshot: { type: 'boolean' },
    domainScoped: { type: 'boolean' },
    nodeConfiguration: { kind: 'm:1', entity: 'NodeConfiguration', nullable: true },
    authDomains: { kind: '1:m', entity: () => CloudAuthDomain, mappedBy: 'cloud', orphanRemoval: true },
    lastSyncAt: { type: 'Date', columnType: 'timestamptz', nullable: true },
  },
});

export const CloudAuthDomainSchema = new EntitySchema<CloudAuthDomain, BaseEntity>({
  class: CloudAuthDomain,
  extends: 'BaseEntity',
  uniques: [{ properties: ['cloud', 'name'] }],
  properties: {
    cloud: { kind: 'm:1', entity: () => Cloud, deleteRule: 'cascade' },
    name: { type: 'string', length: 255 },
    domainId: { type: 'string', length: 255, nullable: true },
    username: { type: 'string', length: 255 },
    password: { type: 'text' },
    defaultProject: { type: 'string', length: 255 },
  },
});
