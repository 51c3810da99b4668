// Per-policy figures an MSP prices schedules with (the reference paper's "averageBackupSize"
// per policy, and "how much data needs to be processed for each policy"):
// - averageBackupSize: mean stored bytes of the policy's backups completed in [from, to)
//   (default: the 30 days before `to`), rounded down;
// - dataToProcess: Σ front-end capacity (last full backup held at `to`) of the instances
//   assigned to the policy now;
// - price: dataToProcess × the policy's front-end price per TB-month from its price card (the
//   slot is the UTC hour of the policy's first scheduled start), rounded half up to cents.
// Scoped: a tenant sees the policies visible to its projects, with figures of its own instances.
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Schedule } from '../src/db/entities/index.ts';
import { formatCents, loadCards, matchCard, roundHalfUp } from './price-card.ts';
import { ReportInputError, runReport, uuidArray, validateRange, type ReportScope } from './report-common.ts';

export type PolicyPriceTag = {
  policyId: string;
  name: string;
  averageBackupSize: bigint;
  backupsCounted: number;
  dataToProcess: bigint;
  instances: number;
  currency: string;
  priceCard: string | null;
  /** Per month, e.g. '12.34'. */
  price: string;
  priceCents: bigint;
};

export type PolicyPriceInput = { from?: Date; to?: Date; policyIds?: string[] | null };

const TB = 1_000_000_000_000n;

/** UTC hour a policy's first scheduled run starts (its slot); 0 without a schedule. */
export function scheduleHour(schedules: Schedule[]): number {
  const s = schedules[0];
  const time = s?.timesOfDay?.[0];
  if (time && /^\d{1,2}:\d{2}$/.test(time)) return Number(time.split(':')[0]) % 24;
  return s?.betweenHours?.from ?? 0;
}

export async function policyPriceTags(em: EntityManager, input: PolicyPriceInput, scope: ReportScope): Promise<PolicyPriceTag[]> {
  const to = input.to ?? new Date();
  const from = input.from ?? new Date(to.getTime() - 30 * 86_400_000);
  if (Number.isNaN(to.getTime())) throw ReportInputError.invalidDate('to');
  validateRange(from, to);
  const polParams: unknown[] = [];
  const conds: string[] = ['true'];
  const scopeIds = scope.projectIds === null ? null : uuidArray('scope', scope.projectIds);
  if (scopeIds !== null) {
    conds.push(`(p.visibility = 'ALL_PROJECTS' or exists (select 1 from policy_project pp where pp.policy_id = p.id and pp.project_id = any(?::uuid[])))`);
    polParams.push(scopeIds);
  }
  if (input.policyIds) {
    conds.push(`p.id = any(?::uuid[])`);
    polParams.push(uuidArray('policyIds', input.policyIds));
  }
  const projectCond = (col: string) => (scopeIds === null ? 'true' : `${col} = any(?::uuid[])`);
  const scoped = scopeIds === null ? [] : [scopeIds];
  const sql = `
    with pol as (select p.id, p.name, p.destination_id, p.schedules from policy p where ${conds.join(' and ')}),
    sizes as (
      select i.policy_id, div(sum(i.stored_bytes), count(*)) as average, count(*) as backups
      from usage_interval i
      where i.policy_id in (select id from pol) and i.completed_at >= ?::timestamptz and i.completed_at < ?::timestamptz and ${projectCond('i.project_id')}
      group by i.policy_id
    ),
    data as (
      select ins.policy_id, sum(f.front_end_bytes) as bytes, count(*) as instances
      from instance ins
      cross join lateral (
        select i.front_end_bytes from usage_interval i
        where i.instance_id = ins.id and i.backup_type = 'FULL' and i.completed_at < ?::timestamptz
          and (i.deleted_at is null or i.deleted_at >= ?::timestamptz)
        order by i.completed_at desc limit 1) f
      where ins.policy_id in (select id from pol) and ${projectCond('ins.project_id')}
      group by ins.policy_id
    )
    select pol.*, coalesce(sizes.average, 0) as average, coalesce(sizes.backups, 0) as backups,
           coalesce(data.bytes, 0) as bytes, coalesce(data.instances, 0) as instances
    from pol left join sizes on sizes.policy_id = pol.id left join data on data.policy_id = pol.id
    order by pol.name`;
  const params = [...polParams, from.toISOString(), to.toISOString(), ...scoped, to.toISOString(), to.toISOString(), ...scoped];
  const rows = await runReport<Record<string, any>>(em, { sql, params });
  const cards = await loadCards(em);
  return rows.map((r) => {
    const schedules = (typeof r.schedules === 'string' ? JSON.parse(r.schedules) : r.schedules) as Schedule[];
    const card = matchCard(cards, r.id, r.destination_id, scheduleHour(schedules ?? []));
    const bytes = BigInt(r.bytes);
    const cents = roundHalfUp((card?.frontEndPerTbMonthMicros ?? 0n) * bytes, TB * 10_000n);
    return {
      policyId: r.id,
      name: r.name,
      averageBackupSize: BigInt(r.average),
      backupsCounted: Number(r.backups),
      dataToProcess: bytes,
      instances: Number(r.instances),
      currency: card?.currency ?? cards[0]?.currency ?? 'EUR',
      priceCard: card?.name ?? null,
      price: formatCents(cents),
      priceCents: cents,
    };
  });
}
