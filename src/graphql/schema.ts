// The schema: the builder plus one import per area (each file registers its own types).
import { builder } from './builder.ts';
import './scalars.ts';
import './viewer.ts';
import './service-accounts.ts';
import './node.ts';
import './projects.ts';
import './clouds.ts';
import './storage-providers.ts';
import './node-configurations.ts';
import './data-movers.ts';
import './destinations.ts';
import './policies.ts';
import './quotas.ts';
import './instances.ts';
import './mutations/clouds.ts';
import './mutations/storage.ts';
import './mutations/destinations.ts';
import './mutations/policies.ts';
import './tasks/index.ts';
import './quota-preview.ts';
import './reports.ts';
import './attribution.ts';
import './audit-events.ts';

export const schema = builder.toSchema({ sortSchema: true });
