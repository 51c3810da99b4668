// What every resolver gets: the caller, an ORM fork scoped to what the caller may see, and the
// process's services. One context per operation (and per subscription event).
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Viewer } from '../auth/viewer.ts';
import { scopeOf } from '../auth/viewer.ts';
import type { Services } from '../services.ts';

export type Context = {
  viewer: Viewer | null;
  em: EntityManager;
  services: Services;
};

export function createContext(services: Services, viewer: Viewer | null): Context {
  const em = services.orm.em.fork() as EntityManager;
  em.setFilterParams('tenant', scopeOf(viewer));
  return { viewer, em, services };
}
