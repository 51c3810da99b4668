// A small seed DSL over a system fork, so tests read as specifications:
// `const s = seeder(t.services.orm); const c = await s.cloud(); const p = await s.project(c)…`
import type { EntityManager } from '@mikro-orm/postgresql';
import { encodeGlobalID } from '@pothos/plugin-relay';
import {
  AvailabilityZone, BackupDestination, Cloud, Flavor, Image, Instance, NodeConfiguration, Policy, Project, Quota, Volume, type Visibility,
} from '../../src/db/entities/index.ts';
import { systemFork } from '../../src/db/orm.ts';
import type { Orm } from '../../src/db/orm.ts';

let n = 0;
const next = (prefix: string) => `${prefix}-${++n}`;

export function gid(typename: string, id: string) {
  return encodeGlobalID(typename, id);
}

export function seeder(orm: Orm) {
  const em = (): EntityManager => systemFork(orm) as EntityManager;
  async function save<T extends object>(entity: T): Promise<T> {
    const e = em();
    e.persist(entity);
    await e.flush();
    return entity;
  }
  return {
    async cloud(name = next('cloud')) {
      const e = em();
      const c = e.create(Cloud, { name, keystoneUrl: 'https://keystone.example/v3', region: 'RegionOne' });
      await e.flush();
      return c;
    },
    async project(cloud: Cloud, name = next('project')) {
      const e = em();
      const p = e.create(Project, { cloud: cloud.id, externalId: next('ext'), name });
      await e.flush();
      return p;
    },
    async zone(cloud: Cloud, opts: { visibility?: Visibility; projects?: Project[]; nodeConfiguration?: NodeConfiguration } = {}) {
      const e = em();
      const z = e.create(AvailabilityZone, { cloud: cloud.id, name: next('zone'), visibility: opts.visibility ?? 'ALL_PROJECTS', nodeConfiguration: opts.nodeConfiguration?.id });
      for (const p of opts.projects ?? []) z.projects.add(e.getReference(Project, p.id));
      await e.flush();
      return z;
    },
    async flavor(cloud: Cloud) {
      const e = em();
      const f = e.create(Flavor, { cloud: cloud.id, externalId: next('flv'), name: next('m1.small'), vcpus: 1, ramMib: 512 });
      await e.flush();
      return f;
    },
    async image(cloud: Cloud) {
      const e = em();
      const i = e.create(Image, { cloud: cloud.id, externalId: next('img'), name: next('cirros') });
      await e.flush();
      return i;
    },
    async destination(opts: { visibility?: Visibility; projects?: Project[]; name?: string } = {}) {
      const e = em();
      const d = e.create(BackupDestination, { name: opts.name ?? next('dest'), kind: 'FILE_SYSTEM', url: 'file:///srv/backups', visibility: opts.visibility ?? 'ALL_PROJECTS' });
      for (const p of opts.projects ?? []) d.projects.add(e.getReference(Project, p.id));
      await e.flush();
      return d;
    },
    async policy(opts: { visibility?: Visibility; projects?: Project[]; name?: string; destination?: BackupDestination } = {}) {
      const e = em();
      const p = e.create(Policy, {
        name: opts.name ?? next('policy'), visibility: opts.visibility ?? 'ALL_PROJECTS', schedules: [{ timesOfDay: ['01:00'], windowMinutes: 60 }], destination: opts.destination?.id,
      });
      for (const pr of opts.projects ?? []) p.projects.add(e.getReference(Project, pr.id));
      await e.flush();
      return p;
    },
    /** `count` instances in `project`, each with a root volume. */
    async instances(
      project: Project,
      count: number,
      opts: { zone?: AvailabilityZone; flavor?: Flavor; image?: Image; policy?: Policy; present?: boolean; name?: string } = {},
    ) {
      const e = em();
      const out: Instance[] = [];
      for (let i = 0; i < count; i++) {
        const inst = e.create(Instance, {
          cloud: project.cloud.id, project: project.id, externalId: next('srv'), name: opts.name ?? next('vm'),
          zone: opts.zone?.id, flavor: opts.flavor?.id, image: opts.image?.id, policy: opts.policy?.id, present: opts.present ?? true,
        });
        e.create(Volume, { cloud: project.cloud.id, project: project.id, instance: inst, externalId: next('vol'), name: next('root'), kind: 'NOVA', sizeBytes: 1n << 30n, bootIndex: 0 });
        out.push(inst);
      }
      await e.flush();
      return out;
    },
    async nodeConfiguration(name = next('node-config')) {
      const e = em();
      const nc = e.create(NodeConfiguration, { name });
      await e.flush();
      return nc;
    },
    async quota(rule: Pick<Quota, 'action' | 'scope' | 'measure' | 'windowSeconds'> & Partial<Pick<Quota, 'softLimit' | 'hardLimit'>>, projects: Project[]) {
      const e = em();
      const q = e.create(Quota, { name: next('quota'), ...rule });
      for (const p of projects) q.projects.add(e.getReference(Project, p.id));
      await e.flush();
      return q;
    },
    save,
  };
}
