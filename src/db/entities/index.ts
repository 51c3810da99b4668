// Every entity schema, for the ORM configuration.
import { BaseSchema } from './base.ts';
import { AuditEntrySchema } from './audit-entry.ts';
import { AuditEventSchema } from './audit-event.ts';
import { AvailabilityZoneSchema } from './availability-zone.ts';
import { BackupDestinationSchema } from './backup-destination.ts';
import { BackupDiskSchema, BackupSchema } from './backup.ts';
import { FlavorSchema, ImageSchema, NetworkSchema, VolumeTypeSchema } from './catalog.ts';
import { CloudAuthDomainSchema, CloudSchema } from './cloud.ts';
import { DataMoverSchema } from './data-mover.ts';
import { HypervisorSchema } from './hypervisor.ts';
import { IdempotencyRecordSchema } from './idempotency-record.ts';
import { InstanceSchema, VolumeSchema } from './instance.ts';
import { NodeConfigurationSchema } from './node-configuration.ts';
import { PolicySchema } from './policy.ts';
import { ProjectSchema } from './project.ts';
import { QuotaSchema } from './quota.ts';
import { RestoreSchema } from './restore.ts';
import { ServiceAccountSchema } from './service-account.ts';
import { SigningKeySchema } from './signing-key.ts';
import { StorageProviderSchema } from './storage-provider.ts';
import { TaskSchema } from './task.ts';
import { PriceCardSchema } from './price-card.ts';
import { UsageCheckpointSchema, UsageCheckpointWeekSchema, UsageDailySchema, UsageIntervalSchema, UsageSeriesSchema } from './usage.ts';

export const entities = [
  BaseSchema, CloudSchema, CloudAuthDomainSchema, ProjectSchema, AvailabilityZoneSchema, HypervisorSchema,
  FlavorSchema, NetworkSchema, ImageSchema, VolumeTypeSchema, StorageProviderSchema, InstanceSchema,
  VolumeSchema, BackupDestinationSchema, NodeConfigurationSchema, DataMoverSchema, PolicySchema, QuotaSchema,
  TaskSchema, BackupSchema, BackupDiskSchema, RestoreSchema, ServiceAccountSchema, AuditEntrySchema, AuditEventSchema,
  IdempotencyRecordSchema, SigningKeySchema,
  UsageIntervalSchema, UsageSeriesSchema, UsageDailySchema, UsageCheckpointSchema, UsageCheckpointWeekSchema, PriceCardSchema,
];

export * from './audit-entry.ts';
export * from './audit-event.ts';
export * from './availability-zone.ts';
export * from './backup-destination.ts';
export * from './backup.ts';
export * from './base.ts';
export * from './catalog.ts';
export * from './cloud.ts';
export * from './data-mover.ts';
export * from './hypervisor.ts';
export * from './idempotency-record.ts';
export * from './instance.ts';
export * from './node-configuration.ts';
export * from './policy.ts';
export * from './project.ts';
export * from './quota.ts';
export * from './restore.ts';
export * from './service-account.ts';
export * from './signing-key.ts';
export * from './storage-provider.ts';
export * from './task.ts';
export * from './price-card.ts';
export * from './usage.ts';
