// Builds GraphQL operations for any field of a schema, so a probe can call every root query,
// mutation and subscription without knowing them: minimal selections (scalars, `id` of
// objects, connections down to `edges { node { id } }`) and arguments filled from a map of
// global IDs chosen by the argument's name ("projectId" → a Project ID, "instanceIds" → [an
// Instance ID]...).
import {
  getNamedType, isEnumType, isInputObjectType, isInterfaceType, isLeafType, isListType, isNonNullType,
  isObjectType, isScalarType, isUnionType, type GraphQLArgument, type GraphQLField, type GraphQLInputField,
  type GraphQLInputType, type GraphQLOutputType,
} from 'graphql';

/** Global IDs by GraphQL type name. */
export type IdMap = Record<string, string>;

/** Which ID a field gets: `own` map or `foreign` map, decided per path (e.g. "input.policyId"). */
export type IdChoice = (path: string) => 'own' | 'foreign';

/** The type name an ID argument refers to, guessed from its name (or the field's name for a bare `id`). */
export function guessTypename(argName: string, fieldName: string, typenames: string[]): string | undefined {
  const base = argName.replace(/Ids?$/, '').toLowerCase();
  const byLength = [...typenames].sort((a, b) => b.length - a.length);
  if (base === '' || base === 'id' || base === 'node') {
    const f = fieldName.toLowerCase();
    return byLength.find((t) => f.startsWith(t.toLowerCase())) ?? byLength.find((t) => f.includes(t.toLowerCase()));
  }
  return (
    byLength.find((t) => base.endsWith(t.toLowerCase())) ??
    byLength.find((t) => t.toLowerCase().endsWith(base)) ??
    byLength.find((t) => base.includes(t.toLowerCase()))
  );
}

function scalarValue(name: string, argName: string, unique: string): unknown {
  switch (name) {
    case 'Int': return 1;
    case 'Float': return 1;
    case 'Boolean': return false;
    case 'DateTime': return new Date().toISOString();
    case 'Bytes': return 1;
    case 'JSON': return {};
    default: {
      const n = argName.toLowerCase();
      if (n.includes('url')) return 'http://probe.test/v3';
      if (n.includes('cron')) return '0 3 * * *';
      return `probe-${unique}`;
    }
  }
}

export type Filler = {
  own: IdMap;
  foreign: IdMap;
  choose: IdChoice;
  /** Also fill optional fields that (recursively) hold IDs. */
  optionalIds: boolean;
  /** Paths of the ID values filled, for variant generation. */
  idPaths?: string[];
};

function holdsId(type: GraphQLInputType, seen = new Set<string>()): boolean {
  const named = getNamedType(type);
  if (isScalarType(named)) return named.name === 'ID';
  if (!isInputObjectType(named) || seen.has(named.name)) return false;
  seen.add(named.name);
  return Object.values(named.getFields()).some((f) => holdsId(f.type, seen));
}

let counter = 0;

export function inputValue(type: GraphQLInputType, argName: string, fieldName: string, path: string, fill: Filler, depth = 0): unknown {
  if (isNonNullType(type)) return inputValue(type.ofType, argName, fieldName, path, fill, depth);
  if (isListType(type)) return [inputValue(type.ofType, argName, fieldName, `${path}[0]`, fill, depth)];
  if (isEnumType(type)) return type.getValues()[0]!.value;
  if (isScalarType(type)) {
    if (type.name === 'ID') {
      fill.idPaths?.push(path);
      const map = fill.choose(path) === 'own' ? fill.own : fill.foreign;
      const typename = guessTypename(argName, fieldName, Object.keys(map));
      return map[typename ?? 'Project'] ?? map.Project;
    }
    return scalarValue(type.name, argName, `${Date.now().toString(36)}-${++counter}`);
  }
  if (isInputObjectType(type)) {
    const out: Record<string, unknown> = {};
    if (depth > 4) return out;
    for (const f of Object.values(type.getFields()) as GraphQLInputField[]) {
      const required = isNonNullType(f.type) && f.defaultValue === undefined;
      if (required || (fill.optionalIds && holdsId(f.type))) {
        out[f.name] = inputValue(f.type, f.name, fieldName, `${path}.${f.name}`, fill, depth + 1);
      }
    }
    return out;
  }
  return null;
}

/** Arguments for a field: required ones always, optional ones that hold IDs when asked. */
export function fieldArgs(field: GraphQLField<unknown, unknown>, fill: Filler): { defs: string; call: string; variables: Record<string, unknown> } {
  const chosen = field.args.filter((a: GraphQLArgument) => (isNonNullType(a.type) && a.defaultValue === undefined) || (fill.optionalIds && holdsId(a.type)));
  const variables: Record<string, unknown> = {};
  for (const a of chosen) variables[a.name] = inputValue(a.type, a.name, field.name, a.name, fill);
  return {
    defs: chosen.length ? `(${chosen.map((a) => `$${a.name}: ${String(a.type)}`).join(', ')})` : '',
    call: chosen.length ? `(${chosen.map((a) => `${a.name}: $${a.name}`).join(', ')})` : '',
    variables,
  };
}

/** A selection set: leaves, and composite fields down to `depth` (then only their `id`). */
export function selection(type: GraphQLOutputType, depth: number): string {
  const named = getNamedType(type);
  if (isLeafType(named)) return '';
  if (isUnionType(named)) return '{ __typename }';
  if (!isObjectType(named) && !isInterfaceType(named)) return '';
  const parts = ['__typename'];
  for (const f of Object.values(named.getFields())) {
    if (f.args.some((a) => isNonNullType(a.type) && a.defaultValue === undefined)) continue;
    const ft = getNamedType(f.type);
    if (isLeafType(ft)) parts.push(f.name);
    else if (depth > 0) {
      const sub = selection(f.type, depth - 1);
      if (sub) parts.push(`${f.name} ${sub}`);
    } else if ((isObjectType(ft) || isInterfaceType(ft)) && 'id' in ft.getFields()) {
      parts.push(`${f.name} { id }`);
    }
  }
  return `{ ${parts.join(' ')} }`;
}

/** One operation calling `field` of the root type `kind`. */
export function operation(kind: 'query' | 'mutation' | 'subscription', field: GraphQLField<unknown, unknown>, fill: Filler, depth: number) {
  const args = fieldArgs(field, fill);
  const sel = selection(field.type, depth);
  return { query: `${kind} Probe${args.defs} { ${field.name}${args.call} ${sel} }`, variables: args.variables };
}
