// Price cards and the invoice preview. Money is exact: prices are decimal strings held as
// BigInt micro-units (10^-6 of the currency unit); an amount is computed as an exact rational
// from the raw byte-time or bytes and rounded once, half up, to cents per invoice line; the
// total is the sum of the rounded lines. GB = 10^9 bytes, TB = 10^12 bytes; a GB-month is one
// GB held for the whole calendar month of the period (so a month of 28 or 31 days is one month).
import type { EntityManager } from '@mikro-orm/postgresql';
import { BackupDestination, Policy, PriceCard } from '../src/db/entities/index.ts';
import { lastFullSql } from './front-end.ts';
import { ReportInputError, uuidArray } from './report-common.ts';

const MICROS = 1_000_000n;
const GB = 1_000_000_000n;
const TB = 1_000_000_000_000n;
const MS_PER_HOUR = 3_600_000n;

export class PriceError extends Error {
  constructor(readonly code: string, message: string, readonly field: string[] = []) {
    super(message);
  }
  static invalidPrice(field: string, value: string) {
    return new PriceError('INVALID_PRICE', `${field} must be a non-negative decimal with at most 6 decimals, not ${JSON.stringify(value)}`, [field]);
  }
  static invalidSlot() {
    return new PriceError('INVALID_SLOT', 'a slot needs both slotFromHour and slotToHour, each 0–23', ['slotFromHour']);
  }
  static mixedCurrencies(currencies: string[]) {
    return new PriceError('MIXED_CURRENCIES', `the invoice would mix currencies ${currencies.join(', ')}`);
  }
}

/** '12.5' → 12_500_000n micro-units. */
export function parseMoney(value: string, field = 'price'): bigint {
  const m = /^(\d{1,14})(?:\.(\d{1,6}))?$/.exec(value.trim());
  if (!m) throw PriceError.invalidPrice(field, value);
  return BigInt(m[1]!) * MICROS + BigInt((m[2] ?? '').padEnd(6, '0'));
}

/** A price in its canonical 6-decimal form: '0.1' → '0.100000'. */
export function canonicalPrice(value: string): string {
  return formatDecimal6(parseMoney(value), MICROS);
}

/** Cents → '12.34'. */
export function formatCents(cents: bigint): string {
  const sign = cents < 0n ? '-' : '';
  const a = cents < 0n ? -cents : cents;
  return `${sign}${a / 100n}.${(a % 100n).toString().padStart(2, '0')}`;
}

/** A non-negative rational num/den rounded half up to an integer. */
export function roundHalfUp(num: bigint, den: bigint): bigint {
  return (2n * num + den) / (2n * den);
}

/** num/den with 6 decimals, rounded half up: '1.234567'. */
export function formatDecimal6(num: bigint, den: bigint): string {
  const micros = roundHalfUp(num * MICROS, den);
  return `${micros / MICROS}.${(micros % MICROS).toString().padStart(6, '0')}`;
}

export type CardInput = {
  name: string;
  policyId?: string | null;
  destinationId?: string | null;
  slotFromHour?: number | null;
  slotToHour?: number | null;
  currency?: string;
  storedPerGbMonth: string;
  frontEndPerTbMonth: string;
};

export async function createPriceCard(em: EntityManager, input: CardInput): Promise<PriceCard> {
  parseMoney(input.storedPerGbMonth, 'storedPerGbMonth');
  parseMoney(input.frontEndPerTbMonth, 'frontEndPerTbMonth');
  const slotSet = input.slotFromHour != null || input.slotToHour != null;
  const okHour = (h: number | null | undefined) => h != null && Number.isInteger(h) && h >= 0 && h <= 23;
  if (slotSet && !(okHour(input.slotFromHour) && okHour(input.slotToHour))) throw PriceError.invalidSlot();
  const card = em.create(PriceCard, {
    name: input.name,
    policy: input.policyId ? em.getReference(Policy, input.policyId) : undefined,
    destination: input.destinationId ? em.getReference(BackupDestination, input.destinationId) : undefined,
    slotFromHour: input.slotFromHour ?? undefined,
    slotToHour: input.slotToHour ?? undefined,
    currency: input.currency ?? 'EUR',
    storedPerGbMonth: input.storedPerGbMonth,
    frontEndPerTbMonth: input.frontEndPerTbMonth,
  });
  await em.flush();
  return card;
}

export type Card = {
  id: string;
  name: string;
  policyId: string | null;
  destinationId: string | null;
  slotFromHour: number | null;
  slotToHour: number | null;
  currency: string;
  storedPerGbMonthMicros: bigint;
  frontEndPerTbMonthMicros: bigint;
  createdAt: Date;
};

export async function loadCards(em: EntityManager): Promise<Card[]> {
  const rows = await em.execute<Record<string, any>[]>(`select * from price_card order by created_at, id`);
  return rows.map((r) => ({
    id: r.id,
    name: r.name,
    policyId: r.policy_id,
    destinationId: r.destination_id,
    slotFromHour: r.slot_from_hour,
    slotToHour: r.slot_to_hour,
    currency: r.currency,
    storedPerGbMonthMicros: parseMoney(String(r.stored_per_gb_month)),
    frontEndPerTbMonthMicros: parseMoney(String(r.front_end_per_tb_month)),
    createdAt: new Date(r.created_at),
  }));
}

/** Whether UTC hour `h` is in the card's slot [from, to) (wrapping past midnight; from = to: all day). */
export function inSlot(card: Pick<Card, 'slotFromHour' | 'slotToHour'>, h: number): boolean {
  const { slotFromHour: f, slotToHour: t } = card;
  if (f == null || t == null || f === t) return true;
  return f < t ? h >= f && h < t : h >= f || h < t;
}

/**
 * The card for a backup of `policyId` in `destinationId` started at UTC hour `hour`: among the
 * cards that match (a card's unset policy/destination/slot matches anything), the most specific
 * — policy counts 4, destination 2, slot 1 — and among equals the newest.
 */
export function matchCard(cards: Card[], policyId: string | null, destinationId: string | null, hour: number): Card | null {
  let best: Card | null = null;
  let bestScore = -1;
  for (const c of cards) {
    if (c.policyId !== null && c.policyId !== policyId) continue;
    if (c.destinationId !== null && c.destinationId !== destinationId) continue;
    if (!inSlot(c, hour)) continue;
    const score = (c.policyId ? 4 : 0) + (c.destinationId ? 2 : 0) + (c.slotFromHour != null && c.slotFromHour !== c.slotToHour ? 1 : 0);
    if (score > bestScore || (score === bestScore && best !== null && c.createdAt >= best.createdAt)) {
      best = c;
      bestScore = score;
    }
  }
  return best;
}

export type InvoiceLine = {
  kind: 'STORAGE' | 'FRONT_END';
  policyId: string | null;
  destinationId: string | null;
  priceCard: string | null;
  /** GB-months (STORAGE) or TB (FRONT_END), 6 decimals. */
  quantity: string;
  unit: 'GB-month' | 'TB-month';
  unitPrice: string;
  amount: string;
  amountCents: bigint;
};

export type Invoice = { projectId: string; period: string; from: Date; to: Date; currency: string; lines: InvoiceLine[]; total: string; totalCents: bigint };

/** '2026-02' → [2026-02-01, 2026-03-01) UTC. */
export function monthRange(period: string): { from: Date; to: Date; hours: bigint } {
  const m = /^(\d{4})-(0[1-9]|1[0-2])$/.exec(period);
  if (!m) throw ReportInputError.invalidPeriod(period);
  const from = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, 1));
  const to = new Date(Date.UTC(Number(m[1]), Number(m[2]), 1));
  return { from, to, hours: BigInt((to.getTime() - from.getTime()) / 3_600_000) };
}

/**
 * What the project would be invoiced for a calendar month, as of `asOf` (default now; usage
 * after it is not counted yet): per policy, destination and price card, the storage held
 * (GB-months, from byte-time in the period) and the front-end capacity at the end (TB, from
 * each instance's last full backup held then, priced per month).
 */
export async function invoicePreview(em: EntityManager, projectId: string, period: string, asOf: Date = new Date()): Promise<Invoice> {
  const { from, to: monthEnd, hours } = monthRange(period);
  const to = asOf < monthEnd ? asOf : monthEnd;
  const project = uuidArray('projectId', [projectId]);
  const cards = await loadCards(em);

  type Acc = { kind: InvoiceLine['kind']; policyId: string | null; destinationId: string | null; card: Card | null; qty: bigint };
  const acc = new Map<string, Acc>();
  const add = (kind: Acc['kind'], policyId: string | null, destinationId: string | null, hour: number, qty: bigint) => {
    const card = matchCard(cards, policyId, destinationId, hour);
    const key = [kind, policyId, destinationId, card?.id].join('|');
    const a = acc.get(key) ?? { kind, policyId, destinationId, card, qty: 0n };
    a.qty += qty;
    acc.set(key, a);
  };

  if (from < to) {
    const stored = await em.execute<{ policy_id: string | null; destination_id: string; started_hour: number; byte_ms: string }[]>(
      `select policy_id, destination_id, started_hour,
         sum(stored_bytes::numeric * (floor(extract(epoch from least(coalesce(deleted_at, ?::timestamptz), ?::timestamptz)) * 1000)
                                      - floor(extract(epoch from greatest(completed_at, ?::timestamptz)) * 1000))) as byte_ms
       from usage_interval
       where project_id = any(?::uuid[]) and completed_at < ?::timestamptz and (deleted_at is null or deleted_at > ?::timestamptz)
       group by 1, 2, 3`,
      [to.toISOString(), to.toISOString(), from.toISOString(), project, to.toISOString(), from.toISOString()],
    );
    for (const r of stored) add('STORAGE', r.policy_id, r.destination_id, r.started_hour, BigInt(r.byte_ms));

    const last = lastFullSql(to, { projectIds: [projectId] }, { projectIds: null });
    const fulls = await em.execute<{ policy_id: string | null; destination_id: string; started_hour: number; front_end_bytes: string }[]>(
      `select f.policy_id, f.destination_id, f.started_hour, f.front_end_bytes from (${last.sql}) f`,
      last.params,
    );
    for (const r of fulls) add('FRONT_END', r.policy_id, r.destination_id, r.started_hour, BigInt(r.front_end_bytes));
  }

  const currencies = [...new Set([...acc.values()].flatMap((a) => (a.card ? [a.card.currency] : [])))];
  if (currencies.length > 1) throw PriceError.mixedCurrencies(currencies);
  const currency = currencies[0] ?? cards[0]?.currency ?? 'EUR';

  const lines: InvoiceLine[] = [...acc.values()]
    .filter((a) => a.qty > 0n)
    .map((a) => {
      // Exact: amount (micros) = price × qty / unit; cents = micros / 10^4.
      const storage = a.kind === 'STORAGE';
      const price = storage ? a.card?.storedPerGbMonthMicros ?? 0n : a.card?.frontEndPerTbMonthMicros ?? 0n;
      const unitDen = storage ? GB * hours * MS_PER_HOUR : TB;
      const cents = roundHalfUp(price * a.qty, unitDen * 10_000n);
      return {
        kind: a.kind,
        policyId: a.policyId,
        destinationId: a.destinationId,
        priceCard: a.card?.name ?? null,
        quantity: formatDecimal6(a.qty, unitDen),
        unit: storage ? 'GB-month' : 'TB-month',
        unitPrice: formatDecimal6(price, MICROS),
        amount: formatCents(cents),
        amountCents: cents,
      } satisfies InvoiceLine;
    })
    .sort((x, y) => x.kind.localeCompare(y.kind) || String(x.policyId).localeCompare(String(y.policyId)) || x.destinationId!.localeCompare(y.destinationId!) || String(x.priceCard).localeCompare(String(y.priceCard)));
  const totalCents = lines.reduce((s, l) => s + l.amountCents, 0n);
  return { projectId, period, from, to, currency, lines, total: formatCents(totalCents), totalCents };
}
