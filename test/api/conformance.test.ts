// GraphQL over HTTP conformance: graphql-http's server audits against the app as shipped
// (limits, masking and auth plugins included), through its fetch handler.
import { serverAudits } from 'graphql-http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.ts';

describe('GraphQL over HTTP audits', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t?.close());

  it('passes every audit', async () => {
    const audits = serverAudits({ url: 'http://strongbox.test/graphql', fetchFn: (input: any, init: any) => t.app.fetch(input, init) });
    const failed: string[] = [];
    for (const audit of audits) {
      const result = await audit.fn();
      if (result.status !== 'ok') failed.push(`${audit.id} ${audit.name}: ${result.reason}`);
    }
    console.log(`graphql-http audits: ${audits.length - failed.length}/${audits.length} passed`);
    expect(failed).toEqual([]);
  });

  it('reports the cost of every executed operation in extensions.cost', async () => {
    const token = await t.login('ADMIN');
    const small = await t.gql(token, '{ viewer { name } }');
    expect(small.extensions?.cost).toBe(2);
    const page = await t.gql(token, '{ instances(first: 50) { edges { node { id name } } } }');
    expect(page.extensions?.cost).toBeGreaterThan(100);
    const variables = await t.gql(token, 'query($n: Int) { instances(first: $n) { edges { node { id name } } } }', { n: 5 });
    expect(variables.extensions?.cost).toBeLessThan(page.extensions!.cost as number);
  });
});
