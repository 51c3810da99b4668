// Backup policies: schedules, retention, destination, priority, visibility and assignment
// rules, as typed GraphQL objects. A TENANT sees the policies visible to its projects.
import { Policy, type AssignmentRule, type Retention, type Schedule } from '../db/entities/index.ts';
import { listRoles, readScope } from './access.ts';
import { builder } from './builder.ts';
import { VisibilityEnum } from './clouds.ts';
import { connectionComplexity, keysetConnection, namedConnection } from './connections.ts';
import { registerNodeType, scopedLoad, viaLoader, visibleProjectIds } from './node.ts';
import { BackupDestinationRef, PolicyRef, ProjectRef } from './refs.ts';

registerNodeType('Policy');

const HourRangeRef = builder.objectRef<{ from: number; to: number }>('HourRange').implement({
  fields: (t) => ({ from: t.exposeInt('from'), to: t.exposeInt('to') }),
});

export const PolicyScheduleRef = builder.objectRef<Schedule>('PolicySchedule').implement({
  description: 'When runs start: at times of day, or every N hours between two hours; on some days of the week',
  fields: (t) => ({
    timesOfDay: t.stringList({ description: 'Local times "HH:MM"', resolve: (s) => s.timesOfDay ?? [] }),
    daysOfWeek: t.intList({ description: 'ISO days 1 (Monday) … 7; empty = every day', resolve: (s) => s.daysOfWeek ?? [] }),
    intervalHours: t.int({ nullable: true, resolve: (s) => s.intervalHours ?? null }),
    betweenHours: t.field({ type: HourRangeRef, nullable: true, resolve: (s) => s.betweenHours ?? null }),
    windowMinutes: t.int({ description: 'How long after its planned time a run may still start', resolve: (s) => s.windowMinutes }),
    timeZone: t.string({ nullable: true, resolve: (s) => s.timeZone ?? null }),
  }),
});

export const PolicyRetentionRef = builder.objectRef<Retention>('PolicyRetention').implement({
  fields: (t) => ({
    keepLastFull: t.int({ nullable: true, resolve: (r) => r.keepLastFull ?? null }),
    keepLastIncremental: t.int({ nullable: true, resolve: (r) => r.keepLastIncremental ?? null }),
    keepDays: t.int({ nullable: true, description: 'Keep backups newer than this many days', resolve: (r) => r.keepDays ?? null }),
    keepLastWhileInstanceExists: t.boolean({
      description: 'Never delete the newest backup of an instance that still exists in the cloud',
      resolve: (r) => r.keepLastWhileInstanceExists ?? false,
    }),
  }),
});

export const AssignmentRuleRef = builder.objectRef<AssignmentRule>('PolicyAssignmentRule').implement({
  description: 'Assigns the policy to instances matching every given field',
  fields: (t) => ({
    project: t.field({ type: ProjectRef, nullable: true, resolve: (r) => viaLoader(r.projectId ? { id: r.projectId } : null) }),
    zoneName: t.string({ nullable: true, resolve: (r) => r.zoneName ?? null }),
    namePattern: t.string({ nullable: true, description: 'Glob on the instance name, e.g. "db-*"', resolve: (r) => r.namePattern ?? null }),
  }),
});

builder.loadableNode(PolicyRef, {
  description: 'A backup policy: when backups run, where they go, how long they are kept',
  id: { resolve: (p) => p.id },
  load: scopedLoad(Policy, 'Policy'),
  sort: (p) => p.id,
  fields: (t) => ({
    name: t.exposeString('name'),
    description: t.exposeString('description', { nullable: true }),
    enabled: t.exposeBoolean('enabled'),
    destination: t.field({ type: BackupDestinationRef, nullable: true, resolve: (p) => viaLoader(p.destination) }),
    schedules: t.field({ type: [PolicyScheduleRef], resolve: (p) => p.schedules }),
    fullEvery: t.exposeInt('fullEvery', { description: 'A full backup after every N incrementals (0 = always full)' }),
    priority: t.exposeInt('priority'),
    retries: t.exposeInt('retries'),
    retention: t.field({ type: PolicyRetentionRef, resolve: (p) => p.retention }),
    rules: t.field({
      type: [AssignmentRuleRef],
      description: 'Assignment rules (only for ADMIN and OPERATOR; empty for others)',
      resolve: (p, _a, ctx) => (ctx.viewer && ['ADMIN', 'OPERATOR'].includes(ctx.viewer.role) ? p.rules : []),
    }),
    visibility: t.field({ type: VisibilityEnum, resolve: (p) => p.visibility }),
    projects: t.field({
      type: [ProjectRef],
      description: 'The chosen projects (a TENANT sees only its own among them)',
      resolve: (p, _a, ctx) => visibleProjectIds(ctx, 'policy_project', 'policy_id', p.id) as never,
    }),
    createdAt: t.field({ type: 'DateTime', resolve: (p) => p.createdAt }),
  }),
});

builder.queryField('policies', (t) =>
  t.connection(
    {
      type: PolicyRef,
      authScopes: { role: listRoles('Policy') },
      complexity: connectionComplexity,
      resolve: (_root, args, ctx) => keysetConnection(ctx, Policy, readScope(ctx, 'Policy')!, args),
    },
    ...namedConnection('Policy'),
  ),
);
