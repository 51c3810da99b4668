// Every mutation is audited here, in one place, for each root field of a mutation operation
// (over HTTP and graphql-ws): who, which field, which project, which objects, and the result —
// OK, the GraphQL error's code (FORBIDDEN, UNAUTHENTICATED…) or the first userError's code.
// The Mutation fields' resolvers are wrapped once per schema to see what they returned even
// when the caller selected no `userErrors`. Nothing of the input is kept but the global IDs it
// names: no names, URLs, secrets. Operations refused before execution (invalid documents,
// variables of the wrong type, rate limits) ran no mutation and are not recorded.
import {
  defaultFieldResolver, getOperationAST, GraphQLError, type ExecutionArgs, type ExecutionResult, type GraphQLSchema,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { EntityClass } from '@mikro-orm/core';
import { encodeGlobalID } from '@pothos/plugin-relay';
import { scopeOf } from '../auth/viewer.ts';
import { Backup, Instance, Task, Volume } from '../db/entities/index.ts';
import { shortMessage, writeAuditEvents, type AuditRecord } from '../engine/audit-trail.ts';
import type { Context } from './context.ts';
import { parseGlobalId, type GlobalId } from './node.ts';
import type { UserError } from './user-errors.ts';

const MAX_TARGETS = 20;

type FieldOutcome = { field: string; input: unknown; result?: unknown; error?: unknown };

/** Rows owned by a project that an input may name (their project is the event's). */
const projectOwned: Record<string, EntityClass<{ id: string; project?: { id: string } }>> = {
  Instance: Instance as never, Volume: Volume as never, Task: Task as never, Backup: Backup as never,
};

/** The input keys that carry global IDs: `id`, `…Id`, `…Ids`. */
const ID_KEY = /^(id|.+Id|.+Ids)$/;

function inputIds(value: unknown, key = '', out: GlobalId[] = [], depth = 0): GlobalId[] {
  if (depth > 6 || out.length >= MAX_TARGETS) return out;
  if (typeof value === 'string' && ID_KEY.test(key)) {
    const gid = parseGlobalId(value);
    if (gid) out.push(gid);
  } else if (Array.isArray(value)) {
    for (const v of value) inputIds(v, key, out, depth + 1);
  } else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) inputIds(v, k, out, depth + 1);
  }
  return out;
}

/** The objects a payload returns (created or changed), as global IDs. */
function payloadIds(result: unknown): { ids: GlobalId[]; projectId?: string } {
  const ids: GlobalId[] = [];
  let projectId: string | undefined;
  if (!result || typeof result !== 'object') return { ids };
  for (const [key, value] of Object.entries(result)) {
    if (key === 'userErrors' || !value || typeof value !== 'object' || !('id' in value)) continue;
    const gid = parseGlobalId(encodeGlobalID(value.constructor.name, String(value.id)));
    if (gid) ids.push(gid);
    const project = (value as { project?: { id?: string } }).project;
    if (project?.id) projectId ??= project.id;
  }
  return { ids, projectId };
}

function outcomeOf(o: FieldOutcome): { result: string; message?: string } {
  if (o.error !== undefined) {
    const code = o.error instanceof GraphQLError ? o.error.extensions?.code : undefined;
    // Only our own coded errors carry a message fit to keep; anything else may quote internals.
    return typeof code === 'string' ? { result: code, message: shortMessage(o.error instanceof Error ? o.error.message : undefined) } : { result: 'INTERNAL_ERROR', message: 'internal error' };
  }
  const userErrors = (o.result as { userErrors?: UserError[] } | null)?.userErrors ?? [];
  if (userErrors.length === 0) return { result: 'OK' };
  return { result: userErrors[0]!.code, message: shortMessage(userErrors.map((e) => `${e.code}: ${e.message}`).join('; ')) };
}

/** The one project the event concerns, seen through the caller's scope (a foreign object names none). */
async function projectOf(ctx: Context, fromPayload: string | undefined, ids: GlobalId[]): Promise<string | undefined> {
  if (fromPayload) return fromPayload;
  const one = (set: Set<string>) => (set.size === 1 ? [...set][0] : undefined);
  const projects = new Set(ids.filter((g) => g.typename === 'Project').map((g) => g.id));
  if (projects.size > 0) {
    if (!ctx.viewer || (ctx.viewer.projectIds && ![...projects].every((p) => ctx.viewer!.projectIds!.includes(p)))) return undefined;
    return one(projects);
  }
  const owned = new Set<string>();
  const em = ctx.services.orm.em.fork();
  em.setFilterParams('tenant', scopeOf(ctx.viewer));
  for (const [typename, entity] of Object.entries(projectOwned)) {
    const wanted = ids.filter((g) => g.typename === typename).map((g) => g.id);
    if (wanted.length === 0) continue;
    const rows = await em.find(entity, { id: { $in: wanted } } as never, { fields: ['project'] as never });
    for (const row of rows) if (row.project?.id) owned.add(row.project.id);
  }
  return one(owned);
}

async function eventOf(ctx: Context, o: FieldOutcome): Promise<AuditRecord> {
  const given = inputIds(o.input);
  const returned = payloadIds(o.result);
  const targets = [...given, ...returned.ids];
  const viewer = ctx.viewer;
  return {
    actorId: viewer?.accountId,
    actorName: viewer?.name ?? 'anonymous',
    actorRole: viewer?.role,
    action: o.field,
    projectId: await projectOf(ctx, returned.projectId, targets),
    targetIds: [...new Set(targets.map((g) => encodeGlobalID(g.typename, g.id)))].slice(0, MAX_TARGETS),
    ...outcomeOf(o),
  };
}

/** Each mutation operation's field outcomes, by its context (module-wide: the schema is too). */
const outcomes = new WeakMap<object, FieldOutcome[]>();
const wrapped = new WeakSet<GraphQLSchema>();

/** Once per schema: each Mutation field reports its outcome to its operation's list. */
function wrap(schema: GraphQLSchema) {
  if (wrapped.has(schema)) return;
  wrapped.add(schema);
  for (const field of Object.values(schema.getMutationType()?.getFields() ?? {})) {
    const resolve = field.resolve ?? defaultFieldResolver;
    field.resolve = async (root, args, context, info) => {
      const list = outcomes.get(context as object);
      try {
        const result = await resolve(root, args, context, info);
        list?.push({ field: info.fieldName, input: args.input, result });
        return result;
      } catch (error) {
        list?.push({ field: info.fieldName, input: args.input, error });
        throw error;
      }
    };
  }
}

export function auditPlugin(): Plugin {
  return {
    onExecute({ args, executeFn, setExecuteFn }) {
      if (getOperationAST(args.document, args.operationName)?.operation !== 'mutation') return;
      wrap(args.schema);
      setExecuteFn(async (execArgs: ExecutionArgs) => {
        const list: FieldOutcome[] = [];
        const ctx = execArgs.contextValue as Context;
        outcomes.set(ctx, list);
        const result = (await executeFn(execArgs)) as ExecutionResult;
        const events = await Promise.all(list.map((o) => eventOf(ctx, o)));
        if (await writeAuditEvents(ctx.services.orm, events)) return result;
        // The mutation happened but its record did not: say so rather than drop it silently.
        const failed = new GraphQLError('the audit record of this mutation could not be written', { extensions: { code: 'AUDIT_WRITE_FAILED' } });
        return { ...result, errors: [...(result.errors ?? []), failed] };
      });
    },
  };
}
