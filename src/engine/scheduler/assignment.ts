// Which instances a policy covers: those assigned to it directly, and those its rules match
// (every given field of a rule must match). A direct assignment to another policy wins over
// a rule.
import type { EntityManager } from '@mikro-orm/postgresql';
import { Instance, type AssignmentRule, type Policy } from '../../db/entities/index.ts';

/** A shell-style name pattern (`web-*`, `db-?`) as an anchored, case-insensitive RegExp. */
export function namePattern(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`, 'i');
}

export function ruleMatches(rule: AssignmentRule, instance: Instance): boolean {
  if (rule.projectId && instance.project.id !== rule.projectId) return false;
  if (rule.zoneName && instance.zone?.name !== rule.zoneName) return false;
  if (rule.namePattern && !namePattern(rule.namePattern).test(instance.name)) return false;
  return Boolean(rule.projectId || rule.zoneName || rule.namePattern);
}

/** Present instances the policy covers. `em` must see every project (a system fork). */
export async function instancesOfPolicy(em: EntityManager, policy: Policy): Promise<Instance[]> {
  const direct = await em.find(Instance, { policy, present: true });
  if (policy.rules.length === 0) return direct;
  const candidates = await em.find(Instance, { policy: null, present: true }, { populate: ['zone'] });
  const byRule = candidates.filter((i) => policy.rules.some((r) => ruleMatches(r, i)));
  return [...direct, ...byRule];
}
