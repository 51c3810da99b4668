// A price card: what a GB-month stored and a front-end TB cost, for a policy and/or a
// destination and optionally a schedule slot (UTC hours [slotFromHour, slotToHour), wrapping
// past midnight when from > to). The most specific matching card wins (see billing/price-card.ts).
// Prices are decimal strings (numeric(20,6)): money never goes through floats.
import { DecimalType, EntitySchema, type Opt } from '@mikro-orm/core';
import { BaseEntity } from './base.ts';
import type { BackupDestination } from './backup-destination.ts';
import type { Policy } from './policy.ts';

export class PriceCard extends BaseEntity {
  name!: string;
  policy?: Policy;
  destination?: BackupDestination;
  slotFromHour?: number;
  slotToHour?: number;
  currency: string & Opt = 'EUR';
  /** Per GB (10^9 bytes) held for a calendar month. */
  storedPerGbMonth: string & Opt = '0';
  /** Per TB (10^12 bytes) of front-end capacity per month. */
  frontEndPerTbMonth: string & Opt = '0';
}

export const PriceCardSchema = new EntitySchema<PriceCard, BaseEntity>({
  class: PriceCard,
  extends: 'BaseEntity',
  tableName: 'price_card',
  properties: {
    name: { type: 'string', length: 200, unique: true },
    policy: { kind: 'm:1', entity: 'Policy', nullable: true, deleteRule: 'cascade' },
    destination: { kind: 'm:1', entity: 'BackupDestination', nullable: true, deleteRule: 'cascade' },
    slotFromHour: { type: 'smallint', nullable: true },
    slotToHour: { type: 'smallint', nullable: true },
    currency: { type: 'string', length: 3 },
    storedPerGbMonth: { type: new DecimalType('string'), precision: 20, scale: 6 },
    frontEndPerTbMonth: { type: new DecimalType('string'), precision: 20, scale: 6 },
  },
});
