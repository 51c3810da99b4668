// Limits on what one operation may ask for, applied on HTTP and on graphql-ws alike (both run
// `validate` through the same envelop plugins):
// - cost: the Pothos complexity of the operation for its variables (connections cost their
//   page size times their selection), refused above MAX_COST and reported in `extensions.cost`;
// - GraphQL Armor: depth, aliases, directives, tokens, no field suggestions to strangers;
// - input sizes: no string longer than MAX_STRING, no list longer than MAX_LIST, in variables
//   or literals (each mutation checks its own, tighter, limits).
// Internal errors are masked by yoga (maskedErrors stays on); validation errors stay clear.
import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import { createComplexityRule } from '@pothos/plugin-complexity';
import { GraphQLError, Kind, type ValidationContext, type ValidationRule } from 'graphql';
import type { Plugin } from 'graphql-yoga';

export const MAX_COST = 10_000;
export const MAX_DEPTH = 12;
export const MAX_STRING = 20_000;
export const MAX_LIST = 1000;

type Params = { variables?: Record<string, unknown> | null; operationName?: string | null };

/** Cost per operation, keyed by the request's params object (shared by validate and execute). */
const costs = new WeakMap<object, number>();

function tooLarge(message: string) {
  return new GraphQLError(message, { extensions: { code: 'INPUT_TOO_LARGE' } });
}

/** Finds the first oversized string or list in a variables value. */
function oversized(value: unknown, path: string, depth = 0): string | null {
  if (typeof value === 'string') return value.length > MAX_STRING ? `${path} is longer than ${MAX_STRING} characters` : null;
  if (depth > 20) return `${path} is nested too deeply`;
  if (Array.isArray(value)) {
    if (value.length > MAX_LIST) return `${path} has more than ${MAX_LIST} items`;
    for (let i = 0; i < value.length; i++) {
      const bad = oversized(value[i], `${path}[${i}]`, depth + 1);
      if (bad) return bad;
    }
  } else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      const bad = oversized(v, `${path}.${k}`, depth + 1);
      if (bad) return bad;
    }
  }
  return null;
}

const literalSizeRule: ValidationRule = (context) => ({
  StringValue(node) {
    if (node.value.length > MAX_STRING) context.reportError(tooLarge(`a string literal is longer than ${MAX_STRING} characters`));
  },
  ListValue(node) {
    if (node.kind === Kind.LIST && node.values.length > MAX_LIST) context.reportError(tooLarge(`a list literal has more than ${MAX_LIST} items`));
  },
});

function limitsPlugin(): Plugin {
  return {
    onValidate({ context, addValidationRule }) {
      const params = ((context as { params?: Params }).params ?? {}) as Params;
      addValidationRule(literalSizeRule);
      const bad = oversized(params.variables ?? {}, '$variables');
      if (bad) addValidationRule(((ctx) => ({ Document: () => ctx.reportError(tooLarge(bad)) })) as ValidationRule);
      addValidationRule(
        createComplexityRule({
          context: context as object,
          variableValues: (params.variables ?? {}) as Record<string, unknown>,
          operationName: params.operationName,
          maxComplexity: MAX_COST,
          onResult: (result) => {
            costs.set(params, result.complexity);
          },
          validate: (result, reportError) => {
            if (result.complexity > MAX_COST) {
              reportError(new GraphQLError(`query cost ${result.complexity} exceeds the limit of ${MAX_COST}; ask for smaller pages or fewer fields`, {
                extensions: { code: 'QUERY_TOO_COSTLY', cost: result.complexity, maxCost: MAX_COST },
              }));
            }
          },
        }),
      );
    },
    onExecute({ args }) {
      const params = (args.contextValue as { params?: object }).params;
      return {
        onExecuteDone({ result, setResult }) {
          const cost = params ? costs.get(params) : undefined;
          if (cost === undefined || !result || Symbol.asyncIterator in (result as object)) return;
          const r = result as { extensions?: Record<string, unknown> };
          setResult({ ...r, extensions: { ...r.extensions, cost } } as never);
        },
      };
    },
  };
}

const reportInstead = {
  propagateOnRejection: false,
  onReject: [(ctx: ValidationContext | null, error: GraphQLError) => ctx?.reportError(error)],
};

/** The envelop plugins that enforce the limits; add them to createYoga's plugins. */
export function limitPlugins(): Plugin[] {
  return [
    EnvelopArmorPlugin({
      costLimit: { enabled: false }, // the Pothos complexity rule above knows connection sizes
      // Reported as validation errors rather than thrown, so that the graphql-ws path (which calls
      // validate in onSubscribe) answers with an error message too.
      maxDepth: { n: MAX_DEPTH, ignoreIntrospection: true, ...reportInstead },
      maxAliases: { n: 15, ...reportInstead },
      maxDirectives: { n: 20, ...reportInstead },
      maxTokens: { n: 5000 }, // checked while parsing: there is no validation context to report to
      blockFieldSuggestion: { enabled: true },
    }) as Plugin,
    limitsPlugin(),
  ];
}
