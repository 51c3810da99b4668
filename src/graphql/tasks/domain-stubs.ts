// TEMPORARY: minimal Node implementations of the domain types the task area points at, so the
// schema builds on this branch before api-domain (which owns these types) is merged. Delete
// this file (and its import in schema.ts) when merging api-domain.
import * as E from '../../db/entities/index.ts';
import { builder } from '../builder.ts';
import { AvailabilityZoneRef, BackupDestinationRef, CloudRef, DataMoverRef, InstanceRef, PolicyRef, ProjectRef, QuotaRef } from '../refs.ts';
import { loadById } from './loaders.ts';

function stub<T extends { id: string; name: string }>(ref: any, entity: new (...a: any[]) => T) {
  builder.node(ref, {
    id: { resolve: (o: T) => o.id },
    isTypeOf: (o: unknown) => o instanceof entity,
    loadOne: (id: string, ctx: any) => loadById(ctx, entity, id),
    fields: (t: any) => ({ name: t.exposeString('name') }),
  });
}

stub(InstanceRef, E.Instance);
stub(ProjectRef, E.Project);
stub(PolicyRef, E.Policy);
stub(BackupDestinationRef, E.BackupDestination);
stub(DataMoverRef, E.DataMover);
stub(AvailabilityZoneRef, E.AvailabilityZone);
stub(QuotaRef, E.Quota);
stub(CloudRef, E.Cloud);
