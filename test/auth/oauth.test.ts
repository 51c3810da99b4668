// POST /oauth/token: client credentials as a form, as JSON and with HTTP Basic; every way to
// be refused answers the OAuth error RFC 6749 §5.2 names.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServiceAccount, setEnabled } from '../../src/auth/service-accounts.ts';
import { ServiceAccount } from '../../src/db/entities/index.ts';
import { systemFork } from '../../src/db/orm.ts';
import { startTestApp, type TestApp } from '../helpers/app.ts';

describe('POST /oauth/token', () => {
  let t: TestApp;
  let creds: { clientId: string; clientSecret: string };
  beforeAll(async () => {
    t = await startTestApp();
    creds = await createServiceAccount(systemFork(t.services.orm), { name: 'portal', role: 'OPERATOR' });
  });
  afterAll(() => t?.close());

  const post = (body: string, headers: Record<string, string>) => t.fetch('/oauth/token', { method: 'POST', headers, body });
  const form = (fields: Record<string, string>, headers: Record<string, string> = {}) =>
    post(new URLSearchParams(fields).toString(), { 'content-type': 'application/x-www-form-urlencoded', ...headers });
  const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

  async function expectToken(res: Response) {
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const body = await res.json();
    expect(body).toMatchObject({ token_type: 'Bearer', expires_in: t.services.config.tokenTtlSeconds });
    const viewer = await t.gql(body.access_token, '{ viewer { name role } }');
    expect(viewer.data.viewer).toEqual({ name: 'portal', role: 'OPERATOR' });
  }

  it('issues a token for a form body', async () => {
    await expectToken(await form({ grant_type: 'client_credentials', client_id: creds.clientId, client_secret: creds.clientSecret }));
  });

  it('issues a token for a JSON body', async () => {
    await expectToken(await post(JSON.stringify({ grant_type: 'client_credentials', client_id: creds.clientId, client_secret: creds.clientSecret }), { 'content-type': 'application/json' }));
  });

  it('issues a token for HTTP Basic client authentication', async () => {
    await expectToken(await form({ grant_type: 'client_credentials' }, { authorization: basic(creds.clientId, creds.clientSecret) }));
  });

  it('refuses a wrong secret, an unknown client and a disabled account with invalid_client 401', async () => {
    const cases = [
      await form({ grant_type: 'client_credentials', client_id: creds.clientId, client_secret: 'wrong' }),
      await form({ grant_type: 'client_credentials', client_id: 'sb_nobody', client_secret: creds.clientSecret }),
      await form({ grant_type: 'client_credentials' }, { authorization: basic(creds.clientId, 'wrong') }),
    ];
    const disabled = await createServiceAccount(systemFork(t.services.orm), { name: 'gone', role: 'ADMIN' });
    const em = systemFork(t.services.orm);
    await setEnabled(em, await em.findOneOrFail(ServiceAccount, { clientId: disabled.clientId }), false);
    cases.push(await form({ grant_type: 'client_credentials', client_id: disabled.clientId, client_secret: disabled.clientSecret }));
    for (const res of cases) {
      expect(res.status).toBe(401);
      const body = await res.json();
      expect(body.error).toBe('invalid_client');
      expect(body.access_token).toBeUndefined();
    }
    // RFC 6749 §5.2: a client that used Basic is told how to authenticate.
    expect(cases[2]!.headers.get('www-authenticate')).toMatch(/^Basic /);
  });

  it('refuses other grant types with unsupported_grant_type 400', async () => {
    for (const grant of ['password', 'authorization_code', 'refresh_token']) {
      const res = await form({ grant_type: grant, client_id: creds.clientId, client_secret: creds.clientSecret });
      expect(res.status).toBe(400);
      expect((await res.json()).error).toBe('unsupported_grant_type');
    }
  });

  it('answers invalid_request 400 to missing fields and malformed bodies', async () => {
    const missingGrant = await form({ client_id: creds.clientId, client_secret: creds.clientSecret });
    const missingSecret = await form({ grant_type: 'client_credentials', client_id: creds.clientId });
    const badJson = await post('{"grant_type":', { 'content-type': 'application/json' });
    const badBasic = await form({ grant_type: 'client_credentials' }, { authorization: `Basic ${Buffer.from('no-colon').toString('base64')}` });
    const badEscape = await form({ grant_type: 'client_credentials' }, { authorization: `Basic ${Buffer.from('%E0%A4%A:x').toString('base64')}` });
    for (const res of [missingGrant, missingSecret, badJson, badBasic, badEscape]) {
      expect(res.status).toBe(400);
      expect((await res.json()).error).toBe('invalid_request');
    }
  });

  it('refuses an oversized body with 413 before reading credentials', async () => {
    const res = await form({ grant_type: 'client_credentials', client_id: creds.clientId, client_secret: creds.clientSecret, pad: 'x'.repeat(5000) });
    expect(res.status).toBe(413);
    expect((await res.json()).error).toBe('invalid_request');
  });

  it('answers GET with 405', async () => {
    const res = await t.fetch('/oauth/token');
    expect(res.status).toBe(405);
  });
});
