// The schema: the builder plus one import per area (each file registers its own types).
import { builder } from './builder.ts';
import './scalars.ts';
import './viewer.ts';
import './service-accounts.ts';
import './reports.ts';

export const schema = builder.toSchema({ sortSchema: true });
