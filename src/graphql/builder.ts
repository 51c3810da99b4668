// The Pothos schema builder: plugins, scalars, auth scopes. Each area of the API lives in its
// own file under src/graphql/ and registers its types and fields on this builder.
import SchemaBuilder from '@pothos/core';
import ComplexityPlugin from '@pothos/plugin-complexity';
import DataloaderPlugin from '@pothos/plugin-dataloader';
import RelayPlugin from '@pothos/plugin-relay';
import ScopeAuthPlugin from '@pothos/plugin-scope-auth';
import { GraphQLError } from 'graphql';
import type { Role } from '../db/entities/index.ts';
import type { Context } from './context.ts';

export const builder = new SchemaBuilder<{
  Context: Context;
  AuthScopes: {
    /** Any valid, enabled account. */
    authenticated: boolean;
    /** The caller has one of these roles. */
    role: Role[];
  };
  Scalars: {
    DateTime: { Input: Date; Output: Date | string };
    Bytes: { Input: bigint; Output: bigint | number | string };
    JSON: { Input: unknown; Output: unknown };
  };
  DefaultFieldNullability: false;
  DefaultEdgesNullability: false;
  DefaultNodeNullability: false;
}>({
  // scope-auth first, so its checks wrap every other plugin's resolvers.
  defaultFieldNullability: false,
  plugins: [ScopeAuthPlugin, RelayPlugin, DataloaderPlugin, ComplexityPlugin],
  scopeAuth: {
    authScopes: (ctx) => ({
      authenticated: ctx.viewer !== null,
      role: (roles) => ctx.viewer !== null && roles.includes(ctx.viewer.role),
    }),
    unauthorizedError: (_parent, ctx) =>
      new GraphQLError(ctx.viewer ? 'not allowed' : 'authentication required', {
        extensions: { code: ctx.viewer ? 'FORBIDDEN' : 'UNAUTHENTICATED' },
      }),
  },
  relay: {
    clientMutationId: 'omit',
    cursorType: 'String',
    // The connection field already multiplies by its page size (connections.ts); edges must not again.
    edgesFieldOptions: { nullable: false, complexity: { field: 0, multiplier: 1 } },
    // node(id)/nodes(ids) are defined in node.ts: bad, unknown or foreign IDs answer null, never an error.
    nodeQueryOptions: false,
    nodesQueryOptions: false,
  },
  complexity: {
    defaultComplexity: 1,
    defaultListMultiplier: 10,
  },
});

builder.queryType({});
builder.mutationType({});
