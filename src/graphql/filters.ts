// Small helpers for list filters.
import { GraphQLError } from 'graphql';
import type { GlobalId } from './node.ts';

/** An ILIKE pattern matching `text` anywhere, with LIKE wildcards in `text` taken literally. */
export function containsPattern(text: string): string {
  if (text.length > 200) throw new GraphQLError('filter text is limited to 200 characters', { extensions: { code: 'BAD_USER_INPUT' } });
  return `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/** A filter on a reference by global ID; an unknown or wrong-type ID matches nothing. */
export function idFilter(gid: GlobalId | null): string | { $in: string[] } {
  return gid ? gid.id : { $in: [] };
}
