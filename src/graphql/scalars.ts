// Custom scalars: DateTime (ISO-8601), Bytes (non-negative integer, exact beyond 2^53 — a
// number when safe, else a string), JSON.
import { GraphQLError, Kind } from 'graphql';
import { builder } from './builder.ts';

builder.scalarType('DateTime', {
  description: 'An ISO-8601 date-time, e.g. 2026-11-27T10:00:00.000Z',
  serialize: (value) => (value instanceof Date ? value.toISOString() : new Date(value).toISOString()),
  parseValue: (value) => {
    const d = typeof value === 'string' ? new Date(value) : new Date(NaN);
    if (Number.isNaN(d.getTime())) throw new GraphQLError('DateTime must be an ISO-8601 string');
    return d;
  },
});

function toBytes(value: unknown): bigint {
  let n: bigint;
  if (typeof value === 'bigint') n = value;
  else if (typeof value === 'number' && Number.isSafeInteger(value)) n = BigInt(value);
  else if (typeof value === 'string' && /^\d{1,20}$/.test(value)) n = BigInt(value);
  else throw new GraphQLError('Bytes must be a non-negative integer (number or decimal string)');
  if (n < 0n) throw new GraphQLError('Bytes must not be negative');
  return n;
}

builder.scalarType('Bytes', {
  description: 'A size in bytes: a non-negative integer, serialised as a number when below 2^53, else as a decimal string',
  serialize: (value) => {
    const n = toBytes(value);
    return n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n.toString();
  },
  parseValue: toBytes,
  parseLiteral: (ast) => {
    if (ast.kind === Kind.INT || ast.kind === Kind.STRING) return toBytes(ast.kind === Kind.INT ? BigInt(ast.value) : ast.value);
    throw new GraphQLError('Bytes must be an integer or a decimal string');
  },
});

builder.scalarType('JSON', {
  description: 'Arbitrary JSON',
  serialize: (v) => v,
  parseValue: (v) => v,
});
