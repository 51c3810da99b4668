// GraphQL Code Generator: typed documents for the portals' operations (schema/operations) from
// the printed schema. `npm run codegen` rewrites test/generated/graphql.ts (committed).
import type { CodegenConfig } from '@graphql-codegen/cli';

const config: CodegenConfig = {
  overwrite: true,
  schema: 'schema/schema.graphql',
  documents: 'schema/operations/*.graphql',
  generates: {
    'test/generated/graphql.ts': {
      plugins: ['typescript-operations', 'typed-document-node'],
      config: {
        useTypeImports: true,
        enumsAsTypes: true,
        scalars: { DateTime: 'string', Bytes: 'number | string', JSON: 'unknown' },
      },
    },
  },
};

export default config;
