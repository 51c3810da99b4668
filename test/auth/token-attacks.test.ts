// Tokens the service must refuse on /graphql: each answers UNAUTHENTICATED with no data.
import { createPublicKey } from 'node:crypto';
import { generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServiceAccount } from '../../src/auth/service-accounts.ts';
import { systemFork } from '../../src/db/orm.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';
import { mint, serviceSigningKey, unsigned } from '../helpers/tokens.ts';

describe('token attacks on /graphql', () => {
  let t: TestApp;
  let admin: string;
  let accountId: string;
  let key: Awaited<ReturnType<typeof serviceSigningKey>>;
  let iss: string;
  let aud: string;

  beforeAll(async () => {
    t = await startTestApp();
    admin = await t.login('ADMIN');
    const created = await createServiceAccount(systemFork(t.services.orm), { name: 'victim', role: 'ADMIN' });
    accountId = created.account.id;
    key = await serviceSigningKey(t.services);
    iss = t.services.config.tokenIssuer;
    aud = t.services.config.tokenAudience;
  });
  afterAll(() => t?.close());

  async function expectRefused(token: string) {
    const res = await t.gql(token, '{ viewer { name role } }');
    expect(res.data ?? null).toBeNull();
    expect(res.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  }

  const now = () => Math.floor(Date.now() / 1000);
  const valid = (over: Partial<Parameters<typeof mint>[0]> = {}) =>
    mint({ key: key.privateKey, header: { alg: 'ES256', kid: key.kid }, sub: accountId, issuer: iss, audience: aud, ...over });

  it('accepts a token minted with the service key and correct claims (the control case)', async () => {
    const res = await t.gql(await valid(), '{ viewer { name } }');
    expect(res.data.viewer.name).toBe('victim');
  });

  it('refuses alg: none', async () => {
    await expectRefused(unsigned({ sub: accountId, iss, aud, gen: 0, iat: now(), exp: now() + 300 }));
    await expectRefused(unsigned({ sub: accountId, iss, aud, gen: 0, iat: now(), exp: now() + 300 }, { alg: 'none', kid: key.kid }));
  });

  it('refuses HS256 signed with the public key (JWK JSON, PEM and raw point bytes)', async () => {
    const jwkBytes = new TextEncoder().encode(JSON.stringify(key.publicJwk));
    const pem = createPublicKey({ key: key.publicJwk as never, format: 'jwk' }).export({ type: 'spki', format: 'pem' }) as string;
    const der = createPublicKey({ key: key.publicJwk as never, format: 'jwk' }).export({ type: 'spki', format: 'der' });
    for (const secret of [jwkBytes, new TextEncoder().encode(pem), new Uint8Array(der)]) {
      await expectRefused(await mint({ key: secret, header: { alg: 'HS256', kid: key.kid }, sub: accountId, issuer: iss, audience: aud }));
    }
  });

  it('refuses an expired token', async () => {
    await expectRefused(await valid({ iat: now() - 600, exp: now() - 60 }));
  });

  it('refuses a token that lives longer than the service ever issues', async () => {
    await expectRefused(await valid({ exp: now() + 10 * 86400 }));
  });

  it('refuses a wrong audience or issuer, or a missing one', async () => {
    await expectRefused(await valid({ audience: 'someone-else' }));
    await expectRefused(await valid({ issuer: 'https://evil.example' }));
    await expectRefused(await valid({ audience: undefined }));
    await expectRefused(await valid({ issuer: undefined }));
  });

  it('refuses an unknown kid, a missing kid and a non-JWT typ', async () => {
    await expectRefused(await valid({ header: { alg: 'ES256', kid: 'ffffffffffffffff' } }));
    await expectRefused(await valid({ header: { alg: 'ES256', kid: '../../etc/passwd' } }));
    await expectRefused(await valid({ header: { alg: 'ES256' } }));
    await expectRefused(await valid({ header: { alg: 'ES256', kid: key.kid, typ: 'at+jwt+weird' } }));
  });

  it('refuses a token signed by another ES256 key with the real kid', async () => {
    const other = await generateKeyPair('ES256');
    await expectRefused(await mint({ key: other.privateKey, header: { alg: 'ES256', kid: key.kid }, sub: accountId, issuer: iss, audience: aud }));
  });

  it('refuses a validly signed token for an unknown account or without its generation', async () => {
    await expectRefused(await valid({ sub: '01900000-0000-7000-8000-000000000000' }));
    await expectRefused(await valid({ sub: 'not-a-uuid' }));
    await expectRefused(await valid({ claims: { gen: 'zero' as never } }));
  });

  it('refuses garbage', async () => {
    for (const token of ['garbage', 'a.b.c', 'eyJhbGciOiJFUzI1NiJ9..', `${'x'.repeat(5000)}.y.z`]) await expectRefused(token);
    // Not even a bearer token.
    const res = await t.fetch('/graphql', { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Basic Zm9vOmJhcg==' }, body: JSON.stringify({ query: '{ viewer { name } }' }) });
    expect((await res.json()).errors[0].extensions.code).toBe('UNAUTHENTICATED');
  });

  it('stops a disabled account’s token at once, and keeps it dead after re-enabling', async () => {
    const token = await t.login('OPERATOR');
    const me = await t.gql(admin, '{ serviceAccounts(first: 100) { edges { node { id name role } } } }');
    const operator = me.data.serviceAccounts.edges.map((e: any) => e.node).find((n: any) => n.role === 'OPERATOR');
    expect((await t.gql(token, '{ viewer { name } }')).data.viewer.name).toBe(operator.name);

    const update = `mutation($input: ServiceAccountUpdateInput!) { serviceAccountUpdate(input: $input) { serviceAccount { enabled } userErrors { code } } }`;
    const off = await t.gql(admin, update, { input: { id: operator.id, enabled: false } });
    expect(off.data.serviceAccountUpdate).toEqual({ serviceAccount: { enabled: false }, userErrors: [] });
    await expectRefused(token);

    const on = await t.gql(admin, update, { input: { id: operator.id, enabled: true } });
    expect(on.data.serviceAccountUpdate.serviceAccount.enabled).toBe(true);
    await expectRefused(token);
  });

  it('stops every token of an account whose secret is rotated', async () => {
    const created = await createServiceAccount(systemFork(t.services.orm), { name: 'rotated', role: 'BILLING' });
    const tokenRes = await t.fetch('/oauth/token', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ grant_type: 'client_credentials', client_id: created.clientId, client_secret: created.clientSecret }),
    });
    const token = (await tokenRes.json()).access_token;
    expect((await t.gql(token, '{ viewer { name } }')).data.viewer.name).toBe('rotated');
    const id = Buffer.from(`ServiceAccount:${created.account.id}`).toString('base64');
    const rotated = await t.gql(admin, `mutation { serviceAccountRotateSecret(input: { id: "${id}" }) { clientSecret userErrors { code } } }`);
    expect(rotated.data.serviceAccountRotateSecret.clientSecret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    await expectRefused(token);
  });
});

describe('signing key rotation', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t?.close());

  it('signs with the new key at once, keeps verifying the old one until its tokens expire, and serves both in the JWKS', async () => {
    const before = await t.login('OPERATOR');
    const oldKid = JSON.parse(Buffer.from(before.split('.')[0]!, 'base64url').toString()).kid;
    const newKid = await t.services.tokens.rotate();
    expect(newKid).not.toBe(oldKid);
    const after = await t.login('OPERATOR');
    expect(JSON.parse(Buffer.from(after.split('.')[0]!, 'base64url').toString()).kid).toBe(newKid);
    for (const token of [before, after]) expect((await t.gql(token, '{ viewer { role } }')).data.viewer.role).toBe('OPERATOR');
    const jwks = await (await t.fetch('/.well-known/jwks.json')).json();
    expect(jwks.keys.map((k: { kid: string }) => k.kid).sort()).toEqual([oldKid, newKid].sort());
    for (const k of jwks.keys) expect(k.d).toBeUndefined();
  });
});
