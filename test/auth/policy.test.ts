// The RBAC table, read as a specification: who may do what, on which project.
import { describe, expect, it } from 'vitest';
import { Actions, can, rolesAllowed, type Action } from '../../src/auth/policy.ts';
import type { Viewer } from '../../src/auth/viewer.ts';

const viewer = (role: Viewer['role'], projectIds: string[] | null = null): Viewer => ({ accountId: 'a', name: role, role, projectIds });
const A = '0190aaaa-0000-7000-8000-000000000001';
const B = '0190bbbb-0000-7000-8000-000000000002';

describe('policy statements', () => {
  it('grants each action to exactly these roles', () => {
    const expected: Record<Action, string[]> = {
      'inventory:read': ['ADMIN', 'OPERATOR', 'BILLING', 'TENANT'],
      'policy:read': ['ADMIN', 'OPERATOR', 'BILLING', 'TENANT'],
      'config:read': ['ADMIN', 'OPERATOR'],
      'config:write': ['ADMIN'],
      'inventory:sync': ['ADMIN', 'OPERATOR'],
      'task:read': ['ADMIN', 'OPERATOR', 'TENANT'],
      'task:start': ['ADMIN', 'OPERATOR', 'TENANT'],
      'task:cancel': ['ADMIN', 'OPERATOR', 'TENANT'],
      'backup:read': ['ADMIN', 'OPERATOR', 'BILLING', 'TENANT'],
      'backup:delete': ['ADMIN', 'OPERATOR', 'TENANT'],
      'maintenance:run': ['ADMIN', 'OPERATOR'],
      'report:read': ['ADMIN', 'BILLING'],
      'quota:read': ['ADMIN', 'OPERATOR', 'TENANT'],
      'audit:read': ['ADMIN', 'TENANT'],
      'account:manage': ['ADMIN'],
    };
    for (const action of Actions) expect(rolesAllowed(action), action).toEqual(expected[action]);
  });

  it('limits a TENANT to its own projects, and to no project-less object', () => {
    const tenant = viewer('TENANT', [A]);
    expect(can(tenant, 'task:start', A)).toBe(true);
    expect(can(tenant, 'task:start', B)).toBe(false);
    expect(can(tenant, 'task:cancel', B)).toBe(false);
    expect(can(tenant, 'backup:read', null)).toBe(false);
    expect(can(viewer('TENANT', []), 'task:start', A)).toBe(false);
  });

  it('gives OPERATOR every project for tasks and backups, but no configuration writes', () => {
    const op = viewer('OPERATOR');
    expect(can(op, 'task:start', B)).toBe(true);
    expect(can(op, 'task:cancel', null)).toBe(true);
    expect(can(op, 'config:write')).toBe(false);
    expect(can(op, 'account:manage')).toBe(false);
    expect(can(op, 'report:read')).toBe(false);
  });

  it('gives BILLING reports and the usage behind them (backups, names), nothing operational', () => {
    const billing = viewer('BILLING');
    const allowed: Action[] = ['report:read', 'backup:read', 'inventory:read', 'policy:read'];
    for (const action of allowed) expect(can(billing, action, B), action).toBe(true);
    for (const action of Actions.filter((a) => !allowed.includes(a))) expect(can(billing, action), action).toBe(false);
  });

  it('refuses everything to no caller', () => {
    for (const action of Actions) expect(can(null, action)).toBe(false);
  });
});
