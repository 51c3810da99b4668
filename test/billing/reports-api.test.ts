// The reports through the real app: GraphQL fields and the streamed CSV export, with roles,
// tenant scoping (a tenant never gets another project's rows) and input errors.
import { encodeGlobalID } from '@pothos/plugin-relay';
import type { EntityManager } from '@mikro-orm/postgresql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recordBackupCompleted, recordBackupDeleted, usageFromBackup } from '../../billing/ledger.ts';
import { systemFork } from '../../src/db/orm.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { createBackup, seedInventory, type Inventory } from './seed.ts';

const GB = 1_000_000_000;
const gid = (type: string, id: string) => encodeGlobalID(type, id);

let t: TestApp;
let inv: Inventory;
let billing: string;
let tenant0: string;

const SIZE = `query($input: SizeReportInput!) { sizeReport(input: $input) {
  measure total rows { keys { dimension id name } value instances figures { stored storedAdded frontEnd transferred byteHours backups } } } }`;

beforeAll(async () => {
  t = await startTestApp();
  inv = await seedInventory(t.services.orm);
  const em = systemFork(t.services.orm) as EntityManager;
  // Rename a project of the other tenant so its name is easy to look for in every response.
  inv.projects[1]!.name = 'secret-project-one';
  await em.nativeUpdate('Project', { id: inv.projects[1]!.id }, { name: 'secret-project-one' });
  let n = 0;
  for (const vm of inv.instances) {
    for (let day = 1; day <= 3; day++) {
      const b = await createBackup(t.services.orm, inv, {
        instance: vm, type: day === 1 ? 'FULL' : 'INCREMENTAL', stored: BigInt((day + n) * GB), frontEnd: BigInt(50 * GB), transferred: BigInt(day * GB),
        completedAt: new Date(Date.UTC(2026, 9, day)),
      });
      await recordBackupCompleted(em, usageFromBackup(b));
      if (day === 2) await recordBackupDeleted(em, b.id, new Date(Date.UTC(2026, 9, 20)));
    }
    n++;
  }
  billing = await t.login('BILLING');
  tenant0 = await t.login('TENANT', [inv.projects[0]!.id]);
});
afterAll(() => t?.close());

const range = { from: '2026-10-01T00:00:00Z', to: '2026-11-01T00:00:00Z' };

describe('sizeReport over GraphQL', () => {
  it('gives BILLING every project, with exact figures', async () => {
    const res = await t.gql(billing, SIZE, { input: { ...range, groupBy: ['PROJECT'], measure: 'STORED' } });
    expect(res.errors).toBeUndefined();
    const rows = res.data.sizeReport.rows;
    expect(rows.map((r: any) => r.keys[0].name).sort()).toEqual(['project-0', 'project-2', 'secret-project-one']);
    // project-0 holds vm-0 (n=0) and vm-3 (n=3): days 1 and 3 kept → (1+0)+(3+0)+(1+3)+(3+3) = 14 GB.
    const p0 = rows.find((r: any) => r.keys[0].name === 'project-0');
    expect(p0.value).toBe(14 * GB);
    expect(p0.keys[0].id).toBe(gid('Project', inv.projects[0]!.id));
    expect(p0.figures.backups).toBe(6);
    expect(res.data.sizeReport.total).toBe(rows.reduce((a: number, r: any) => a + r.value, 0));
  });

  it('gives a TENANT only its own project, whatever its filter names', async () => {
    const own = await t.gql(tenant0, SIZE, { input: { ...range, groupBy: ['PROJECT', 'INSTANCE'], measure: 'BYTE_HOURS' } });
    expect(own.errors).toBeUndefined();
    expect(new Set(own.data.sizeReport.rows.map((r: any) => r.keys[0].name))).toEqual(new Set(['project-0']));
    const other = await t.gql(tenant0, SIZE, { input: { ...range, groupBy: ['PROJECT'], measure: 'STORED', filter: { projectIds: [gid('Project', inv.projects[1]!.id)] } } });
    expect(other.data.sizeReport.rows).toEqual([]);
    const fe = await t.gql(tenant0, `{ frontEndCapacity(input: { to: "2026-11-01T00:00:00Z", groupBy: [PROJECT] }) { measure rows { keys { name } value instances } } }`);
    expect(fe.data.frontEndCapacity).toEqual({ measure: 'FRONT_END_CAPACITY', rows: [{ keys: [{ name: 'project-0' }], value: 100 * GB, instances: 2 }] });
    expect(t.responses.some((b) => b.includes('secret-project-one') && b.includes('frontEndCapacity'))).toBe(false);
  });

  it('refuses bad input with clear errors, other roles and anonymous callers', async () => {
    const reversed = await t.gql(billing, SIZE, { input: { from: range.to, to: range.from, groupBy: ['PROJECT'], measure: 'STORED' } });
    expect(reversed.errors?.[0]).toMatchObject({ message: '`from` must be before `to`', extensions: { code: 'BAD_USER_INPUT', reason: 'INVALID_RANGE' } });
    const noGroups = await t.gql(billing, SIZE, { input: { ...range, groupBy: [], measure: 'STORED' } });
    expect(noGroups.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'GROUP_BY_EMPTY' });
    const tooLong = await t.gql(billing, SIZE, { input: { from: '2020-01-01T00:00:00Z', to: '2026-01-01T00:00:00Z', groupBy: ['CLOUD'], measure: 'STORED' } });
    expect(tooLong.errors?.[0]?.extensions).toMatchObject({ reason: 'RANGE_TOO_LONG' });
    const badId = await t.gql(billing, SIZE, { input: { ...range, groupBy: ['CLOUD'], measure: 'STORED', filter: { instanceIds: [gid('Project', inv.projects[0]!.id)] } } });
    expect(badId.errors?.[0]?.extensions).toMatchObject({ reason: 'INVALID_ID' });
    const operator = await t.login('OPERATOR');
    expect((await t.gql(operator, SIZE, { input: { ...range, groupBy: ['CLOUD'], measure: 'STORED' } })).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect((await t.gql(null, SIZE, { input: { ...range, groupBy: ['CLOUD'], measure: 'STORED' } })).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });
});

describe('price cards, price tags and invoices over GraphQL', () => {
  it('lets ADMIN create price cards (not BILLING) and prices invoices; a tenant cannot see another project’s invoice', async () => {
    const admin = await t.login('ADMIN');
    const create = `mutation($input: PriceCardCreateInput!) { priceCardCreate(input: $input) { priceCard { name storedPerGbMonth } userErrors { code field message } } }`;
    const ok = await t.gql(admin, create, { input: { name: 'std', storedPerGbMonth: '0.10', frontEndPerTbMonth: '4' } });
    expect(ok.data.priceCardCreate).toEqual({ priceCard: { name: 'std', storedPerGbMonth: '0.100000' }, userErrors: [] });
    const bad = await t.gql(admin, create, { input: { name: 'bad', storedPerGbMonth: '0.1e2', frontEndPerTbMonth: '4' } });
    expect(bad.data.priceCardCreate.userErrors[0]).toMatchObject({ code: 'INVALID_PRICE', field: ['input', 'storedPerGbMonth'] });
    expect((await t.gql(billing, create, { input: { name: 'x', storedPerGbMonth: '1', frontEndPerTbMonth: '1' } })).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');

    const invoice = `query($input: InvoicePreviewInput!) { invoicePreview(input: $input) { project { name } currency total lines { kind quantity unitPrice amount priceCard policy { name } destination { name } } } }`;
    const mine = await t.gql(tenant0, invoice, { input: { projectId: gid('Project', inv.projects[0]!.id), period: '2026-10', asOf: '2026-11-27T00:00:00Z' } });
    expect(mine.errors).toBeUndefined();
    expect(mine.data.invoicePreview.project.name).toBe('project-0');
    expect(mine.data.invoicePreview.lines.length).toBeGreaterThan(0);
    const cents = mine.data.invoicePreview.lines.reduce((a: number, l: any) => a + Math.round(Number(l.amount) * 100), 0);
    expect(Math.round(Number(mine.data.invoicePreview.total) * 100)).toBe(cents);
    const theirs = await t.gql(tenant0, invoice, { input: { projectId: gid('Project', inv.projects[1]!.id), period: '2026-10' } });
    expect(theirs.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    const badPeriod = await t.gql(billing, invoice, { input: { projectId: gid('Project', inv.projects[1]!.id), period: 'October' } });
    expect(badPeriod.errors?.[0]?.extensions).toMatchObject({ reason: 'INVALID_PERIOD' });

    const tags = await t.gql(billing, `{ policyPriceTags(input: { to: "2026-11-01T00:00:00Z", from: "2026-10-01T00:00:00Z" }) { policy { name } averageBackupSize dataToProcess instances price currency } }`);
    expect(tags.errors).toBeUndefined();
    // policy-0: vm-0, vm-2, vm-4 with a 50 GB last full each → 150 GB × 4 per TB-month = 0.60
    expect(tags.data.policyPriceTags.find((p: any) => p.policy.name === 'policy-0')).toMatchObject({ dataToProcess: 150 * GB, instances: 3, price: '0.60', currency: 'EUR' });

    // The same figures on Policy itself (as of now), batched per request; a tenant's count only its instances.
    const policies = `{ policies(first: 50) { edges { node { name dataToProcess price priceCurrency averageBackupSize } } } }`;
    const p0 = (r: any) => r.data.policies.edges.map((e: any) => e.node).find((n: any) => n.name === 'policy-0');
    const asBilling = await t.gql(billing, policies);
    expect(asBilling.errors).toBeUndefined();
    expect(p0(asBilling)).toMatchObject({ dataToProcess: 150 * GB, price: '0.60', priceCurrency: 'EUR' });
    const asTenant = await t.gql(tenant0, policies);
    expect(asTenant.errors).toBeUndefined();
    expect(p0(asTenant)).toMatchObject({ dataToProcess: 50 * GB, price: '0.20' }); // vm-0 only
  });
});

describe('CSV export', () => {
  it('streams a grouped report and the per-backup lines, scoped like GraphQL', async () => {
    const q = new URLSearchParams({ ...range, groupBy: 'PROJECT,INSTANCE', measure: 'STORED' });
    const all = await t.fetch(`/reports/size.csv?${q}`, { headers: { authorization: `Bearer ${billing}` } });
    expect(all.status).toBe(200);
    expect(all.headers.get('content-type')).toContain('text/csv');
    const allLines = (await all.text()).trim().split('\n');
    expect(allLines[0]).toBe('project_id,project_name,instance_id,instance_name,stored,stored_added,front_end,transferred,byte_hours,backups,value');
    expect(allLines).toHaveLength(1 + inv.instances.length);

    const mine = await t.fetch(`/reports/size.csv?${q}&projectId=${inv.projects[1]!.id}`, { headers: { authorization: `Bearer ${tenant0}` } });
    expect((await mine.text()).trim().split('\n')).toHaveLength(1);
    const own = await (await t.fetch(`/reports/usage.csv?${new URLSearchParams(range)}`, { headers: { authorization: `Bearer ${tenant0}` } })).text();
    const ownLines = own.trim().split('\n');
    expect(ownLines).toHaveLength(1 + 2 * 3); // vm-0 and vm-3, three backups each
    expect(own).not.toContain('secret-project-one');
    expect(own).not.toContain(gid('Project', inv.projects[1]!.id));

    const usage = await (await t.fetch(`/reports/usage.csv?${new URLSearchParams(range)}`, { headers: { authorization: `Bearer ${billing}` } })).text();
    expect(usage.trim().split('\n')).toHaveLength(1 + inv.instances.length * 3);
    const fe = await (await t.fetch(`/reports/front-end.csv?groupBy=CLOUD&to=2026-11-01T00:00:00Z`, { headers: { authorization: `Bearer ${billing}` } })).text();
    expect(fe.trim().split('\n')[1]).toBe(`${gid('Cloud', inv.cloud.id)},cloud-a,${6 * 50 * GB},6`);
  });

  it('answers 401 without a token, 403 for other roles, 400 for bad input and 404 for unknown reports', async () => {
    expect((await t.fetch('/reports/usage.csv?from=2026-10-01T00:00:00Z&to=2026-11-01T00:00:00Z')).status).toBe(401);
    const operator = await t.login('OPERATOR');
    expect((await t.fetch('/reports/usage.csv?from=2026-10-01T00:00:00Z&to=2026-11-01T00:00:00Z', { headers: { authorization: `Bearer ${operator}` } })).status).toBe(403);
    const bad = await t.fetch('/reports/size.csv?from=2026-10-02T00:00:00Z&to=2026-10-01T00:00:00Z&groupBy=PROJECT', { headers: { authorization: `Bearer ${billing}` } });
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain('INVALID_RANGE');
    expect((await t.fetch('/reports/size.csv?from=2026-10-01T00:00:00Z&to=2026-11-01T00:00:00Z&groupBy=NOPE', { headers: { authorization: `Bearer ${billing}` } })).status).toBe(400);
    expect((await t.fetch('/reports/nothing.csv', { headers: { authorization: `Bearer ${billing}` } })).status).toBe(404);
  });
});
