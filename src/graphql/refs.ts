// Object refs for the domain's GraphQL types, declared once so that every area file can point
// at any type; each is implemented (as a Relay node) in its area's file.
import type * as E from '../db/entities/index.ts';
import { builder } from './builder.ts';

export const CloudRef = builder.objectRef<E.Cloud>('Cloud');
export const CloudAuthDomainRef = builder.objectRef<E.CloudAuthDomain>('CloudAuthDomain');
export const ProjectRef = builder.objectRef<E.Project>('Project');
export const AvailabilityZoneRef = builder.objectRef<E.AvailabilityZone>('AvailabilityZone');
export const HypervisorRef = builder.objectRef<E.Hypervisor>('Hypervisor');
export const FlavorRef = builder.objectRef<E.Flavor>('Flavor');
export const NetworkRef = builder.objectRef<E.Network>('Network');
export const ImageRef = builder.objectRef<E.Image>('Image');
export const VolumeTypeRef = builder.objectRef<E.VolumeType>('VolumeType');
export const StorageProviderRef = builder.objectRef<E.StorageProvider>('StorageProvider');
export const InstanceRef = builder.objectRef<E.Instance>('Instance');
export const VolumeRef = builder.objectRef<E.Volume>('Volume');
export const BackupDestinationRef = builder.objectRef<E.BackupDestination>('BackupDestination');
export const NodeConfigurationRef = builder.objectRef<E.NodeConfiguration>('NodeConfiguration');
export const DataMoverRef = builder.objectRef<E.DataMover>('DataMover');
export const PolicyRef = builder.objectRef<E.Policy>('Policy');
export const QuotaRef = builder.objectRef<E.Quota>('Quota');
export const TaskRef = builder.objectRef<E.Task>('Task');
export const BackupRef = builder.objectRef<E.Backup>('Backup');
export const BackupDiskRef = builder.objectRef<E.BackupDisk>('BackupDisk');
export const RestoreRef = builder.objectRef<E.Restore>('Restore');
