// The tenant-isolation probe. Tenant A ("alpha") must never see or touch another project's
// data ("bravo", "charlie"): not through any root query, `node`/`nodes`, nested fields,
// mutations or subscriptions. Every field is discovered from the schema, so fields added later
// are probed without changing this file. Each probe also runs as ADMIN as a positive control:
// the foreign data is there and the probe would see it if it leaked.
import { encodeGlobalID } from '@pothos/plugin-relay';
import { createClient } from 'graphql-ws';
import { isInterfaceType, isObjectType, type GraphQLField, type GraphQLObjectType } from 'graphql';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServiceAccount } from '../../src/auth/service-accounts.ts';
import type { Viewer } from '../../src/auth/viewer.ts';
import * as E from '../../src/db/entities/index.ts';
import { systemFork } from '../../src/db/orm.ts';
import { createContext } from '../../src/graphql/context.ts';
import { schema } from '../../src/graphql/schema.ts';
import { listen } from '../../src/server.ts';
import { startTestApp, type GqlResult, type TestApp } from '../helpers/app.ts';
import { operation, selection, type Filler, type IdMap } from '../helpers/probe.ts';
import { globalIds, rowIds, seedTenants, type Seed } from '../helpers/tenant-seed.ts';

type Field = GraphQLField<unknown, unknown>;

describe('tenant isolation', () => {
  let t: TestApp;
  let seed: Seed;
  let tenantA: string;
  let admin: string;
  let operator: string;
  let own: IdMap;
  let foreign: IdMap;
  let foreignIds: string[];
  let foreignUuids: string[];

  beforeAll(async () => {
    t = await startTestApp();
    seed = await seedTenants(systemFork(t.services.orm), t.services.secrets);
    tenantA = await t.login('TENANT', [seed.alpha.project.id]);
    admin = await t.login('ADMIN');
    operator = await t.login('OPERATOR');
    const bravoPortal = await createServiceAccount(systemFork(t.services.orm), { name: 'bravo-portal', role: 'TENANT', projectIds: [seed.bravo.project.id] });
    own = { ...globalIds(seed.alpha), Cloud: encodeGlobalID('Cloud', seed.clouds[0]!.id) };
    foreign = { ...globalIds(seed.bravo), Cloud: encodeGlobalID('Cloud', seed.clouds[1]!.id), ServiceAccount: encodeGlobalID('ServiceAccount', bravoPortal.account.id) };
    foreignIds = [...Object.values(foreign), ...Object.values(globalIds(seed.charlie))];
    foreignUuids = [...rowIds(seed.bravo), ...rowIds(seed.charlie), bravoPortal.account.id];
  });
  afterAll(() => t?.close());

  /** Foreign markers found: names anywhere in the body; IDs anywhere in `data`. */
  function leaks(res: GqlResult): string[] {
    const body = JSON.stringify(res);
    const data = JSON.stringify(stripMessages(res.data ?? null));
    const found = [...body.matchAll(/bravo|charlie/gi)].map((m) => m[0]);
    for (const id of [...foreignIds, ...foreignUuids]) if (data.includes(id)) found.push(id);
    return found;
  }

  /** userErrors may echo the caller's own input (a foreign ID it sent): not a leak. */
  function stripMessages(v: unknown): unknown {
    if (Array.isArray(v)) return v.map(stripMessages);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).filter(([k]) => k !== 'userErrors' && k !== 'message').map(([k, x]) => [k, stripMessages(x)]));
    return v;
  }

  const fields = (type: GraphQLObjectType | null | undefined): Field[] => (type ? Object.values(type.getFields()) : []);
  const allForeign: Filler['choose'] = () => 'foreign';

  /** Runs an operation; when a cost/depth limit refuses it, retries with a shallower selection. */
  async function probe(token: string, kind: 'query' | 'mutation', field: Field, fill: Filler, depth: number): Promise<GqlResult> {
    let res: GqlResult = {};
    for (let d = depth; d >= 0; d--) {
      const op = operation(kind, field, fill, d);
      res = await t.gql(token, op.query, op.variables);
      const limited = res.errors?.some((e) => /cost|complex|depth|too many|limit/i.test(e.message)) && res.data == null;
      if (!limited) break;
    }
    return res;
  }

  it('(a) every root query field: tenant A gets no row of another project', async () => {
    const probed: string[] = [];
    const adminLeaks: string[] = [];
    for (const field of fields(schema.getQueryType())) {
      if (field.name === 'node' || field.name === 'nodes') continue;
      for (const optionalIds of [false, true]) {
        const fill: Filler = { own, foreign, choose: allForeign, optionalIds };
        const res = await probe(tenantA, 'query', field, fill, 3);
        if (process.env.PROBE_DEBUG) console.log('Q', field.name, optionalIds, JSON.stringify(res).slice(0, 300));
        expect(leaks(res), `${field.name} (optional IDs: ${optionalIds}) ${JSON.stringify(res).slice(0, 400)}`).toEqual([]);
        adminLeaks.push(...leaks(await probe(admin, 'query', field, { own, foreign, choose: allForeign, optionalIds: false }, 3)));
      }
      probed.push(field.name);
    }
    expect(probed).toContain('viewer');
    // Positive control: the same probe as ADMIN does reach foreign rows.
    expect(adminLeaks.length).toBeGreaterThan(0);
  });

  it('(b) node/nodes with every foreign global ID answer null', async () => {
    const query = schema.getQueryType()!.getFields();
    if (query.node) {
      for (const id of foreignIds) {
        const res = await t.gql(tenantA, 'query($id: ID!) { node(id: $id) { __typename id } }', { id });
        expect(res.data?.node ?? null, id).toBeNull();
        expect(leaks(res)).toEqual([]);
      }
    }
    if (query.nodes) {
      const res = await t.gql(tenantA, 'query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }', { ids: foreignIds });
      for (const n of (res.data?.nodes ?? []) as unknown[]) expect(n).toBeNull();
      expect(leaks(res)).toEqual([]);
    }
    if (query.node) {
      // Positive control: ADMIN does get (some of) these objects by the same IDs.
      let found = 0;
      for (const id of foreignIds) found += (await t.gql(admin, 'query($id: ID!) { node(id: $id) { id } }', { id })).data?.node ? 1 : 0;
      expect(found).toBeGreaterThan(0);
    }
  });

  it('(d) nested fields of every object tenant A may see hold no foreign rows', async () => {
    if (!schema.getQueryType()!.getFields().node) return;
    const visible = [...Object.entries(own), ...Object.entries({
      Policy: encodeGlobalID('Policy', seed.shared.policy.id),
      BackupDestination: encodeGlobalID('BackupDestination', seed.shared.destination.id),
      AvailabilityZone: encodeGlobalID('AvailabilityZone', seed.shared.zone.id),
    })];
    for (const [typename, id] of visible) {
      const type = schema.getType(typename);
      if (!type || !(isObjectType(type) || isInterfaceType(type))) continue;
      let res: GqlResult = {};
      for (let d = 3; d >= 0; d--) {
        res = await t.gql(tenantA, `query($id: ID!) { node(id: $id) { __typename ... on ${typename} ${selection(type, d)} } }`, { id });
        if (!(res.errors?.some((e) => /cost|complex|depth|limit/i.test(e.message)) && res.data == null)) break;
      }
      if (process.env.PROBE_DEBUG) console.log('N', typename, JSON.stringify(res).slice(0, 600));
      expect(leaks(res), `${typename} ${JSON.stringify(res).slice(0, 400)}`).toEqual([]);
    }
  });

  /** Every table's content (but the audit log), to prove a refused mutation changed nothing. */
  async function snapshot(): Promise<Record<string, string>> {
    const conn = systemFork(t.services.orm).getConnection();
    const tables = await conn.execute<{ table_name: string }[]>(
      `select table_name from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE' and table_name not in ('audit_entry', 'audit_event', 'mikro_orm_migrations') order by 1`,
    );
    const out: Record<string, string> = {};
    for (const { table_name } of tables) {
      const [row] = await conn.execute<{ h: string }[]>(`select md5(coalesce(string_agg(t::text, '|' order by t::text), '')) as h from "${table_name}" t`);
      out[table_name] = row!.h;
    }
    return out;
  }

  function refused(res: GqlResult, field: string): boolean {
    if (res.errors?.length) return true;
    const payload = (res.data as Record<string, any> | undefined)?.[field];
    return payload == null || (Array.isArray(payload.userErrors) && payload.userErrors.length > 0);
  }

  it('(c) every mutation that takes IDs, fed with foreign IDs, is refused and changes nothing', async () => {
    let probedMutations = 0;
    for (const field of fields(schema.getMutationType())) {
      // Which ID paths does this mutation have? (a dry run of the filler)
      const idPaths: string[] = [];
      operation('mutation', field, { own, foreign, choose: allForeign, optionalIds: true, idPaths }, 0);
      if (idPaths.length === 0) continue;
      probedMutations++;
      // All IDs foreign; then each ID alone foreign, the others tenant A's own.
      const variants: Filler['choose'][] = [allForeign, ...(idPaths.length > 1 ? idPaths.map((p): Filler['choose'] => (path) => (path === p ? 'foreign' : 'own')) : [])];
      for (const [i, choose] of variants.entries()) {
        const before = await snapshot();
        const res = await probe(tenantA, 'mutation', field, { own, foreign, choose, optionalIds: true }, 1);
        const what = `${field.name} variant ${i} ${JSON.stringify(res).slice(0, 400)}`;
        if (process.env.PROBE_DEBUG) console.log('M', what);
        expect(refused(res, field.name), what).toBe(true);
        expect(leaks(res), what).toEqual([]);
        expect(await snapshot(), what).toEqual(before);
      }
    }
    expect(probedMutations).toBeGreaterThan(0);
  });

  it('(e) subscriptions with foreign IDs deliver nothing to tenant A', async () => {
    const subs = fields(schema.getSubscriptionType());
    const server = await listen(t.services, '127.0.0.1', 0);
    const client = createClient({ url: server.url.replace(/^http/, 'ws'), webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${tenantA}` }, retryAttempts: 0 });
    // Positive control: ADMIN subscribes to the same operations and must receive the events.
    const control = createClient({ url: server.url.replace(/^http/, 'ws'), webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${admin}` }, retryAttempts: 0 });
    const received: { field: string; payload: unknown }[] = [];
    const controlReceived: unknown[] = [];
    const stops: (() => void)[] = [];
    try {
      for (const field of subs) {
        for (const optionalIds of [false, true]) {
          const op = operation('subscription', field, { own, foreign, choose: allForeign, optionalIds }, 2);
          stops.push(client.subscribe(op, {
            next: (payload) => received.push({ field: field.name, payload }),
            error: () => {},
            complete: () => {},
          }));
          stops.push(control.subscribe(op, { next: (payload) => controlReceived.push(payload), error: () => {}, complete: () => {} }));
        }
      }
      if (subs.length > 0) {
        await new Promise((r) => setTimeout(r, 500));
        // Make foreign events happen: an OPERATOR starts and cancels work on B's objects.
        for (const field of fields(schema.getMutationType()).filter((f) => /^(start|cancel)/i.test(f.name))) {
          await probe(operator, 'mutation', field, { own, foreign, choose: allForeign, optionalIds: true }, 0);
        }
        await new Promise((r) => setTimeout(r, 1500));
        if (process.env.PROBE_DEBUG) console.log('S', subs.map((f) => f.name), 'tenant', JSON.stringify(received).slice(0, 600), 'admin', controlReceived.length, JSON.stringify(controlReceived).slice(0, 300));
        expect(controlReceived.length).toBeGreaterThan(0);
      }
      for (const r of received) {
        expect(leaks(r.payload as GqlResult), `${r.field}: ${JSON.stringify(r.payload).slice(0, 300)}`).toEqual([]);
        const data = (r.payload as GqlResult).data as Record<string, unknown> | null | undefined;
        expect(data?.[r.field] ?? null, `${r.field} delivered data to another tenant`).toBeNull();
      }
    } finally {
      for (const stop of stops) stop();
      await client.dispose();
      await control.dispose();
      await server.close();
    }
  });

  describe('the ORM filter', () => {
    const viewerA = (): Viewer => ({ accountId: '00000000-0000-7000-8000-000000000000', name: 'alpha', role: 'TENANT', projectIds: [seed.alpha.project.id] });

    it('finds no foreign row by primary key in a request fork, even once another fork has loaded it', async () => {
      const system = systemFork(t.services.orm);
      const entities = [
        [E.Project, seed.bravo.project.id], [E.Instance, seed.bravo.instance.id], [E.Volume, seed.bravo.volume.id],
        [E.Backup, seed.bravo.backup.id], [E.BackupDisk, seed.bravo.disk.id], [E.Task, seed.bravo.task.id],
        [E.Restore, seed.bravo.restore.id], [E.Policy, seed.bravo.policy.id], [E.BackupDestination, seed.bravo.destination.id],
        [E.AvailabilityZone, seed.bravo.zone.id],
      ] as const;
      for (const [entity, id] of entities) expect(await system.findOne(entity as never, id), entity.name).not.toBeNull();
      for (const [entity, id] of entities) {
        const em = createContext(t.services, viewerA()).em;
        expect(await em.findOne(entity as never, id), entity.name).toBeNull();
        expect(await em.find(entity as never, { id } as never), entity.name).toEqual([]);
      }
      const em = createContext(t.services, viewerA()).em;
      expect((await em.find(E.Instance, {})).map((i) => i.name)).toEqual(['alpha-instance']);
      expect((await em.find(E.Policy, {})).map((p) => p.name).sort()).toEqual(['alpha-policy', 'shared-policy']);
      expect((await em.find(E.Project, {})).map((p) => p.name)).toEqual(['alpha-project']);
    });

    it('throws for a fork that has not said whose data it reads (fail closed)', async () => {
      const em = t.services.orm.em.fork();
      await expect(em.find(E.Instance, {})).rejects.toThrow(/filter 'tenant'|tenant filter/);
      await expect(em.findOne(E.Task, seed.alpha.task.id)).rejects.toThrow(/filter 'tenant'|tenant filter/);
    });

    it('sees nothing without a viewer', async () => {
      const em = createContext(t.services, null).em;
      expect(await em.find(E.Instance, {})).toEqual([]);
      expect(await em.find(E.Project, {})).toEqual([]);
    });
  });
});

