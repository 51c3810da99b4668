import { describe, expect, it } from 'vitest';
import { namePattern } from '../../src/engine/scheduler/assignment.ts';

describe('policy assignment rules', () => {
  it('matches shell-style name patterns, whole names only', () => {
    expect(namePattern('web-*').test('web-01')).toBe(true);
    expect(namePattern('web-*').test('WEB-01')).toBe(true);
    expect(namePattern('web-*').test('old-web-01')).toBe(false);
    expect(namePattern('db-?').test('db-1')).toBe(true);
    expect(namePattern('db-?').test('db-12')).toBe(false);
    expect(namePattern('a.b').test('axb')).toBe(false);
  });
});
