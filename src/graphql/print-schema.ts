// Prints the schema to schema/schema.graphql; with --check, fails when the file is out of date.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { lexicographicSortSchema, printSchema } from 'graphql';
import { schema } from './schema.ts';

const file = fileURLToPath(new URL('../../schema/schema.graphql', import.meta.url));
const printed = printSchema(lexicographicSortSchema(schema)) + '\n';

if (process.argv.includes('--check')) {
  let current = '';
  try {
    current = readFileSync(file, 'utf8');
  } catch {}
  if (current !== printed) {
    process.stderr.write('schema/schema.graphql is out of date: run `npm run schema:print` and commit it\n');
    process.exit(1);
  }
  process.stdout.write('schema/schema.graphql is up to date\n');
} else {
  writeFileSync(file, printed);
  process.stdout.write(`wrote ${file}\n`);
}
