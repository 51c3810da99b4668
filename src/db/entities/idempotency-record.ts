// The first answer to a trigger mutation with an idempotency key, replayed for 24 h.
import { EntitySchema, type Opt } from '@mikro-orm/core';
import { BaseEntity } from './base.ts';

export class IdempotencyRecord extends BaseEntity {
  accountId!: string;
  key!: string;
  /** sha256 of the operation name and its input, to refuse a reused key with another request. */
  requestHash!: string;
  response: Record<string, unknown> & Opt = {};
}

export const IdempotencyRecordSchema = new EntitySchema<IdempotencyRecord, BaseEntity>({
  class: IdempotencyRecord,
  extends: 'BaseEntity',
  uniques: [{ properties: ['accountId', 'key'] }],
  properties: {
    accountId: { type: 'uuid' },
    key: { type: 'string', length: 255 },
    requestHash: { type: 'string', length: 64 },
    response: { type: 'json' },
  },
});
