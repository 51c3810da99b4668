// What every row has: a time-ordered UUID (so keyset pagination by id follows creation order)
// and creation/update times.
import { EntitySchema, type Opt } from '@mikro-orm/core';
import { v7 as uuidv7 } from 'uuid';

export abstract class BaseEntity {
  id: string = uuidv7();
  createdAt: Date & Opt = new Date();
  updatedAt: Date & Opt = new Date();
}

export const BaseSchema = new EntitySchema<BaseEntity>({
  name: 'BaseEntity',
  abstract: true,
  properties: {
    id: { type: 'uuid', primary: true },
    createdAt: { type: 'Date', columnType: 'timestamptz' },
    updatedAt: { type: 'Date', columnType: 'timestamptz', onUpdate: () => new Date() },
  },
});

/** An encrypted secret as stored (see src/db/secrets.ts); never returned by the API. */
export type Sealed = string;
