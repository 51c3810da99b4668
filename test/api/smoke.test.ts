import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../helpers/app.ts';

describe('API smoke', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t?.close());

  it('issues a token for client credentials and answers viewer with it', async () => {
    const token = await t.login('OPERATOR');
    const res = await t.gql(token, '{ viewer { name role allProjects } }');
    expect(res.errors).toBeUndefined();
    expect(res.data.viewer.role).toBe('OPERATOR');
    expect(res.data.viewer.allProjects).toBe(true);
  });

  it('refuses viewer without a token', async () => {
    const res = await t.gql(null, '{ viewer { name } }');
    expect(res.data).toBeNull();
    expect(res.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('serves the public keys the tokens are signed with', async () => {
    const res = await t.fetch('/.well-known/jwks.json');
    const jwks = await res.json();
    expect(jwks.keys[0]).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256' });
    expect(jwks.keys[0].d).toBeUndefined();
  });
});
