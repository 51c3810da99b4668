// Batched loading: the SQL statements for a page of instances with their project, zone, flavor,
// image, policy (and its destination) and volumes do not grow with the page size.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openOrm, type Orm } from '../../src/db/orm.ts';
import { createApp, type App } from '../../src/server.ts';
import { buildServices } from '../../src/services.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { seeder } from '../helpers/seed.ts';

const PAGE = `query($first: Int!) {
  instances(first: $first) {
    edges { node {
      name present
      project { name }
      zone { name }
      flavor { name }
      image { name }
      policy { name destination { name } }
      volumes { name sizeBytes volumeType { name } }
      lastBackup { id state }
    } }
  }
}`;

describe('SQL statements per page', () => {
  let t: TestApp;
  let orm: Orm;
  let app: App;
  let services: import('../../src/services.ts').Services;
  const statements: string[] = [];
  let counting = false;
  let projects: import('../../src/db/entities/index.ts').Project[];

  beforeAll(async () => {
    t = await startTestApp();
    const s = seeder(t.services.orm);
    const cloud = await s.cloud();
    const zones = [await s.zone(cloud), await s.zone(cloud)];
    const flavors = [await s.flavor(cloud), await s.flavor(cloud), await s.flavor(cloud)];
    const image = await s.image(cloud);
    const dest = await s.destination();
    const policies = [await s.policy({ destination: dest }), await s.policy({ destination: dest })];
    projects = [await s.project(cloud), await s.project(cloud), await s.project(cloud)];
    for (let i = 0; i < 110; i += 10) {
      await s.instances(projects[i % 3]!, 10, { zone: zones[i % 2], flavor: flavors[i % 3], image, policy: policies[i % 2] });
    }
    // A second app on the same database whose ORM reports every statement it sends.
    orm = await openOrm(t.databaseUrl, {
      debug: ['query'],
      logger: (message: string) => {
        if (counting && message.includes('[query]')) statements.push(message);
      },
    });
    services = buildServices(t.services.config, t.databaseUrl, orm, () => orm.close());
    app = createApp(services);
  });
  afterAll(async () => {
    await services?.close();
    await t?.close();
  });

  async function countFor(token: string, first: number) {
    statements.length = 0;
    counting = true;
    const res = await app.fetch('http://strongbox.test/graphql', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: PAGE, variables: { first } }),
    });
    const body = await res.json();
    counting = false;
    expect(body.errors).toBeUndefined();
    expect(body.data.instances.edges).toHaveLength(first);
    expect(body.data.instances.edges[first - 1].node.volumes).toHaveLength(1);
    return statements.length;
  }

  it('is the same for 10 and 100 instances', async () => {
    const admin = await t.login('ADMIN');
    await countFor(admin, 1); // warm-up: the first request also loads the token signing keys
    const ten = await countFor(admin, 10);
    const hundred = await countFor(admin, 100);
    console.log(`SQL statements for a page of instances with project, zone, flavor, image, policy+destination, volumes+type, lastBackup: 10 → ${ten}, 100 → ${hundred}`);
    expect(hundred).toBe(ten);
    expect(ten).toBeLessThanOrEqual(12);
  });

  it('is the same for a TENANT (whose catalog reads are checked against its instances) at 10 and 30', async () => {
    const tenant = await t.login('TENANT', [projects[0]!.id]);
    await countFor(tenant, 1);
    const ten = await countFor(tenant, 10);
    const thirty = await countFor(tenant, 30);
    console.log(`SQL statements for the same page as a TENANT: 10 → ${ten}, 30 → ${thirty}`);
    expect(thirty).toBe(ten);
  });
});
