// The service's token-signing key pair, shared by every API process through the database.
import { EntitySchema } from '@mikro-orm/core';
import { BaseEntity, type Sealed } from './base.ts';

export class SigningKey extends BaseEntity {
  kid!: string;
  alg!: string;
  privateJwk!: Sealed;
  publicJwk!: Record<string, unknown>;
  retiredAt?: Date;
}

export const SigningKeySchema = new EntitySchema<SigningKey, BaseEntity>({
  class: SigningKey,
  extends: 'BaseEntity',
  properties: {
    kid: { type: 'string', length: 64, unique: true },
    alg: { type: 'string', length: 16 },
    privateJwk: { type: 'text' },
    publicJwk: { type: 'json' },
    retiredAt: { type: 'Date', columnType: 'timestamptz', nullable: true },
  },
});
