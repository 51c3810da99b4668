// Access tokens: short-lived JWTs signed with ES256 by a key pair kept (sealed) in the
// database, so every API process signs and verifies with the same keys.
//
// Verification accepts exactly one algorithm (ES256: no `none`, no HMAC with the public key),
// our issuer and audience, `typ: JWT`, a well-formed `kid` of a current key, and a bounded age.
// Claims: `sub` (account ID) and `gen` (the account's token generation, see service-accounts.ts).
//
// Rotation: `rotate()` adds a new key and gives the previous ones a retirement time one token
// lifetime (plus a minute) ahead, so tokens they signed keep working until they expire. Every
// process re-reads the active key and forgets cached public keys within KEY_CACHE_MS.
import { exportJWK, generateKeyPair, importJWK, jwtVerify, SignJWT, type JWK, type CryptoKey } from 'jose';
import { randomBytes } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { SigningKey } from '../db/entities/index.ts';
import type { SecretBox } from '../db/secrets.ts';

const ALG = 'ES256';
const KID = /^[0-9a-f]{16}$/;
const KEY_CACHE_MS = 60_000;
const CLOCK_TOLERANCE_SECONDS = 5;

export type TokenSettings = { issuer: string; audience: string; ttlSeconds: number };
export type TokenClaims = { sub: string; gen: number; exp: number };

type ActiveKey = { kid: string; privateKey: CryptoKey };
type Cached<T> = { value: Promise<T>; at: number };

/** Keys that still verify: not retired, or retired in the future. */
const current = () => ({ $or: [{ retiredAt: null }, { retiredAt: { $gt: new Date() } }] });

export class TokenService {
  #active?: Cached<ActiveKey>;
  #publicKeys = new Map<string, Cached<CryptoKey>>();

  constructor(
    private readonly fork: () => EntityManager,
    private readonly secrets: SecretBox,
    readonly settings: TokenSettings,
  ) {}

  /** The current signing key; created on first use (one row per key, shared by processes). */
  private active(): Promise<ActiveKey> {
    if (!this.#active || Date.now() - this.#active.at > KEY_CACHE_MS) {
      const value = this.loadOrCreateKey(false);
      value.catch(() => (this.#active = undefined));
      this.#active = { value, at: Date.now() };
    }
    return this.#active.value;
  }

  private async loadOrCreateKey(rotate: boolean): Promise<ActiveKey> {
    const em = this.fork();
    // One creator at a time across processes; others then read the row it wrote.
    return em.transactional(async (tx) => {
      await tx.getConnection().execute(`select pg_advisory_xact_lock(hashtext('strongbox.signing-key'))`);
      let row = await tx.findOne(SigningKey, { retiredAt: null }, { orderBy: { createdAt: 'desc' } });
      if (!row || rotate) {
        const retireAt = new Date(Date.now() + (this.settings.ttlSeconds + 60) * 1000);
        for (const old of await tx.find(SigningKey, { retiredAt: null })) old.retiredAt = retireAt;
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
      return { kid: row.kid, privateKey };
    });
  }

  /** Starts signing with a new key; returns its `kid`. */
  async rotate(): Promise<string> {
    const key = await this.loadOrCreateKey(true);
    this.#active = { value: Promise.resolve(key), at: Date.now() };
    return key.kid;
  }

  async issue(subject: string, generation: number): Promise<{ token: string; expiresIn: number }> {
    const key = await this.active();
    const token = await new SignJWT({ gen: generation })
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

  /** The public keys, as served at /.well-known/jwks.json (the active one and those retiring). */
  async jwks(): Promise<{ keys: JWK[] }> {
    await this.active();
    const rows = await this.fork().find(SigningKey, current(), { orderBy: { createdAt: 'desc' } });
    return { keys: rows.map((r) => r.publicJwk as JWK) };
  }

  private publicKey(kid: string): Promise<CryptoKey> {
    const cached = this.#publicKeys.get(kid);
    if (cached && Date.now() - cached.at <= KEY_CACHE_MS) return cached.value;
    const value = (async () => {
      const row = await this.fork().findOne(SigningKey, { kid, ...current() });
      if (!row) throw new Error('unknown key');
      return (await importJWK(row.publicJwk as JWK, ALG)) as CryptoKey;
    })();
    // Unknown kids are not cached: the map holds only keys that exist.
    value.catch(() => this.#publicKeys.delete(kid));
    this.#publicKeys.set(kid, { value, at: Date.now() });
    return value;
  }

  /** The token's claims, or null for any token that is not ours, valid and current. */
  async verify(token: string): Promise<TokenClaims | null> {
    if (token.length > 4096) return null;
    try {
      const { payload } = await jwtVerify(token, (header) => {
        // Checked before any database lookup, so garbage costs nothing.
        if (header.alg !== ALG || typeof header.kid !== 'string' || !KID.test(header.kid)) throw new Error('bad header');
        return this.publicKey(header.kid);
      }, {
        algorithms: [ALG],
        typ: 'JWT',
        issuer: this.settings.issuer,
        audience: this.settings.audience,
        requiredClaims: ['sub', 'exp', 'iat', 'gen'],
        maxTokenAge: this.settings.ttlSeconds + CLOCK_TOLERANCE_SECONDS,
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
      });
      if (typeof payload.sub !== 'string' || !Number.isSafeInteger(payload.gen)) return null;
      // `maxTokenAge` bounds the age since `iat`, not the lifetime: refuse any token that was
      // made to live longer than the service issues (a forged or misissued one).
      if (payload.exp! - payload.iat! > this.settings.ttlSeconds + CLOCK_TOLERANCE_SECONDS) return null;
      return { sub: payload.sub, gen: payload.gen as number, exp: payload.exp! };
    } catch {
      return null;
    }
  }
}
