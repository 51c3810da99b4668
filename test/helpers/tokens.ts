// Minting tokens outside the service, to attack it: with its own signing key (read from the
// database and unsealed, as an attacker who stole it would) or with keys of our own.
import { importJWK, SignJWT, type CryptoKey, type JWTPayload } from 'jose';
import { SigningKey } from '../../src/db/entities/index.ts';
import { systemFork } from '../../src/db/orm.ts';
import type { Services } from '../../src/services.ts';

export async function serviceSigningKey(services: Services): Promise<{ kid: string; privateKey: CryptoKey; publicJwk: Record<string, unknown> }> {
  await services.tokens.jwks(); // creates the key on first use
  const row = await systemFork(services.orm).findOneOrFail(SigningKey, { retiredAt: null }, { orderBy: { createdAt: 'desc' } });
  const privateKey = (await importJWK(JSON.parse(services.secrets.open(row.privateJwk)), 'ES256')) as CryptoKey;
  return { kid: row.kid, privateKey, publicJwk: row.publicJwk };
}

export type MintOptions = {
  key: CryptoKey | Uint8Array;
  header: { alg: string; kid?: string; typ?: string };
  claims?: JWTPayload;
  sub?: string;
  issuer?: string;
  audience?: string;
  /** Seconds since the epoch. */
  iat?: number;
  exp?: number;
};

export async function mint(o: MintOptions): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  let jwt = new SignJWT({ gen: 0, ...o.claims })
    .setProtectedHeader({ typ: 'JWT', ...o.header })
    .setIssuedAt(o.iat ?? now)
    .setExpirationTime(o.exp ?? now + 300);
  if (o.sub) jwt = jwt.setSubject(o.sub);
  if (o.issuer) jwt = jwt.setIssuer(o.issuer);
  if (o.audience) jwt = jwt.setAudience(o.audience);
  return jwt.sign(o.key);
}

/** An unsigned token (`alg: none`). */
export function unsigned(payload: JWTPayload, header: Record<string, unknown> = { alg: 'none', typ: 'JWT' }): string {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  return `${b64(header)}.${b64(payload)}.`;
}
