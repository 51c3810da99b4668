// A small seed DSL for tests that read as specifications:
//   const s = seed(em); const cloud = s.cloud(); const p = s.project(cloud); s.instance(p) …
// Rows are created in the given (system) fork; call `await em.flush()` when done.
import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { Cloud, Instance, Project, Quota, Volume } from '../../src/db/entities/index.ts';

export function seed(em: EntityManager) {
  // Unique across calls (names are unique in several tables).
  const next = () => randomUUID().slice(0, 8);
  return {
    cloud(over: Partial<Cloud> = {}) {
      return em.create(Cloud, { name: `cloud-${next()}`, keystoneUrl: 'http://keystone.test:5000/v3', region: 'RegionOne', ...over });
    },
    project(cloud: Cloud, over: Partial<Project> = {}) {
      return em.create(Project, { cloud, externalId: randomUUID().replaceAll('-', ''), name: `project-${next()}`, ...over });
    },
    instance(project: Project, over: Partial<Instance> = {}) {
      return em.create(Instance, { cloud: project.cloud, project, externalId: randomUUID(), name: `vm-${next()}`, ...over });
    },
    volume(instance: Instance, sizeBytes: bigint, over: Partial<Volume> = {}) {
      return em.create(Volume, { cloud: instance.cloud, project: instance.project, instance, externalId: randomUUID(), name: `vol-${next()}`, sizeBytes, ...over });
    },
    quota(over: Partial<Quota> & Pick<Quota, 'action' | 'scope' | 'measure' | 'windowSeconds'>, projects: Project[]) {
      const q = em.create(Quota, { name: `quota-${next()}`, ...over });
      q.projects.set(projects);
      return q;
    },
  };
}
