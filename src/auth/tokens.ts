// Access tokens: short-lived JWTs signed with ES256 by a key pair kept (sealed) in the
// database, so every API process signs and verifies with the same keys. Verification pins
// the algorithm, issuer and audience, and requires a known `kid`.
import { exportJWK, generateKeyPair, importJWK, jwtVerify, SignJWT, type JWK, type CryptoKey } from 'jose';
import { randomBytes } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { SigningKey } from '../db/entities/index.ts';
import type { SecretBox } from '../db/secrets.ts';

const ALG = 'ES256';

export type TokenSettings = { issuer: string; audience: string; ttlSeconds: number };
export type TokenClaims = { sub: string; exp: number };

type ActiveKey = { kid: string; privateKey: CryptoKey; publicJwk: JWK };

export class TokenService {
  #active?: Promise<ActiveKey>;
  #publicKeys = new Map<string, Promise<CryptoKey>>();

  constructor(
    private readonly fork: () => EntityManager,
    private readonly secrets: SecretBox,
    readonly settings: TokenSettings,
  ) {}

  /** The current signing key; created on first use (one row per key, shared by processes). */
  private active(): Promise<ActiveKey> {
    this.#active ??= this.loadOrCreateKey().catch((e) => {
      this.#active = undefined;
      throw e;
    });
    return this.#active;
  }

  private async loadOrCreateKey(): Promise<ActiveKey> {
    const em = this.fork();
    // One creator at a time across processes; others then read the row it wrote.
    return em.transactional(async (tx) => {
      await tx.getConnection().execute(`select pg_advisory_xact_lock(hashtext('strongbox.signing-key'))`);
      let row = await tx.findOne(SigningKey, { retiredAt: null }, { orderBy: { createdAt: 'desc' } });
      if (!row) {
        const { privateKey, publicKey } = await generateKeyPair(ALG, { extractable: true });
        const kid = randomBytes(8).toString('hex');
        const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: ALG, use: 'sig' };
        row = tx.create(SigningKey, {
          kid,
          alg: ALG,
          privateJwk: this.secrets.seal(JSON.stringify(await exportJWK(privateKey))),
          publicJwk,
        });
        await tx.flush();
      }
      const privateKey = (await importJWK(JSON.parse(this.secrets.open(row.privateJwk)), ALG)) as CryptoKey;
      return { kid: row.kid, privateKey, publicJwk: row.publicJwk as JWK };
    });
  }

  async issue(subject: string): Promise<{ token: string; expiresIn: number }> {
    const key = await this.active();
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: ALG, kid: key.kid, typ: 'JWT' })
      .setSubject(subject)
      .setIssuer(this.settings.issuer)
      .setAudience(this.settings.audience)
      .setIssuedAt()
      .setJti(randomBytes(12).toString('base64url'))
      .setExpirationTime(`${this.settings.ttlSeconds}s`)
      .sign(key.privateKey);
    return { token, expiresIn: this.settings.ttlSeconds };
  }

  /** The public keys, as served at /.well-known/jwks.json. */
  async jwks(): Promise<{ keys: JWK[] }> {
    await this.active();
    const rows = await this.fork().find(SigningKey, { retiredAt: null });
    return { keys: rows.map((r) => r.publicJwk as JWK) };
  }

  private publicKey(kid: string): Promise<CryptoKey> {
    let key = this.#publicKeys.get(kid);
    if (!key) {
      key = (async () => {
        const row = await this.fork().findOne(SigningKey, { kid, retiredAt: null });
        if (!row) throw new Error('unknown key');
        return (await importJWK(row.publicJwk as JWK, ALG)) as CryptoKey;
      })();
      key.catch(() => this.#publicKeys.delete(kid));
      this.#publicKeys.set(kid, key);
    }
    return key;
  }

  /** The token's claims, or null for any token that is not ours, valid and current. */
  async verify(token: string): Promise<TokenClaims | null> {
    try {
      const { payload } = await jwtVerify(token, (header) => {
        if (header.alg !== ALG || typeof header.kid !== 'string') throw new Error('bad header');
        return this.publicKey(header.kid);
      }, {
        algorithms: [ALG],
        issuer: this.settings.issuer,
        audience: this.settings.audience,
        requiredClaims: ['sub', 'exp', 'iat'],
      });
      return { sub: payload.sub!, exp: payload.exp! };
    } catch {
      return null;
    }
  }
}
