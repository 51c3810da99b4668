// POST /oauth/token (OAuth2 client credentials, form or JSON) and GET /.well-known/jwks.json.
import type { Services } from '../services.ts';
import { systemFork } from '../db/orm.ts';
import { AuditEntry, ServiceAccount } from '../db/entities/index.ts';
import { hashSecret, verifySecret } from './passwords.ts';

function json(status: number, body: unknown, headers: Record<string, string> = {}) {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers },
  });
}

const oauthError = (status: number, error: string, description: string, headers: Record<string, string> = {}) =>
  json(status, { error, error_description: description }, headers);

/** Compared against when the client is unknown, so a wrong client ID costs as long as a wrong secret. */
const dummyHash = hashSecret('strongbox-dummy-secret');

function formDecode(value: string | undefined): string | undefined {
  try {
    return value === undefined ? undefined : decodeURIComponent(value.replace(/\+/g, ' '));
  } catch {
    return undefined;
  }
}

const MAX_BODY = 4096;

async function readCredentials(request: Request): Promise<Record<string, string>> {
  const type = request.headers.get('content-type') ?? '';
  const text = await request.text();
  if (text.length > MAX_BODY) return {};
  if (type.includes('application/json')) {
    const body = JSON.parse(text);
    return body && typeof body === 'object' ? Object.fromEntries(Object.entries(body).filter(([, v]) => typeof v === 'string')) as Record<string, string> : {};
  }
  return Object.fromEntries(new URLSearchParams(text));
}

export async function tokenEndpoint(services: Services, request: Request): Promise<Response> {
  if (request.method !== 'POST') return oauthError(405, 'invalid_request', 'use POST');
  if (Number(request.headers.get('content-length') ?? 0) > MAX_BODY) return oauthError(413, 'invalid_request', 'body too large');
  let params: Record<string, string>;
  try {
    params = await readCredentials(request);
  } catch {
    return oauthError(400, 'invalid_request', 'the body is neither a form nor JSON');
  }
  // HTTP Basic client authentication is allowed too (RFC 6749 §2.3.1).
  // Both parts are form-encoded before base64; the secret is everything after the first colon.
  const basic = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(request.headers.get('authorization') ?? '');
  if (basic) {
    const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return oauthError(400, 'invalid_request', 'malformed Basic credentials');
    params.client_id ??= formDecode(decoded.slice(0, colon)) ?? '';
    params.client_secret ??= formDecode(decoded.slice(colon + 1)) ?? '';
  }
  if (!params.grant_type) return oauthError(400, 'invalid_request', 'grant_type is required');
  if (params.grant_type !== 'client_credentials') {
    return oauthError(400, 'unsupported_grant_type', 'grant_type must be client_credentials');
  }
  if (!params.client_id || !params.client_secret) {
    return oauthError(400, 'invalid_request', 'client_id and client_secret are required');
  }
  const em = systemFork(services.orm);
  const account = await em.findOne(ServiceAccount, { clientId: params.client_id });
  const secretOk = await verifySecret(params.client_secret, account?.secretHash ?? (await dummyHash));
  if (!account || !account.enabled || !secretOk) {
    return oauthError(401, 'invalid_client', 'unknown client, wrong secret or disabled account', basic ? { 'www-authenticate': 'Basic realm="strongbox"' } : {});
  }
  const { token, expiresIn } = await services.tokens.issue(account.id, account.tokenGeneration);
  account.lastUsedAt = new Date();
  em.create(AuditEntry, { accountId: account.id, accountName: account.name, action: 'token.issue', objectType: 'ServiceAccount', objectId: account.id, details: {} });
  await em.flush();
  return json(200, { access_token: token, token_type: 'Bearer', expires_in: expiresIn });
}

export async function jwksEndpoint(services: Services): Promise<Response> {
  return json(200, await services.tokens.jwks(), { 'cache-control': 'public, max-age=300' });
}
