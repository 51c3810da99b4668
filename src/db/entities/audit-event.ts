// The audit trail: one append-only row per mutation (each root field of a mutation operation,
// refused and failed ones too) and per task outcome — who, what, which project, when, result.
// (AuditEntry, written inside the mutations' transactions, keeps the details of what changed.)
import { EntitySchema, type Opt } from '@mikro-orm/core';
import { v7 as uuidv7 } from 'uuid';

export class AuditEvent {
  /** UUID v7: id order is time order (the connection pages by it). */
  id: string = uuidv7();
  at: Date & Opt = new Date();
  /** The service account; null for the system (scheduler, tasks) and for callers without a valid token. */
  actorId?: string;
  /** The account's name, `system`, or `anonymous`. */
  actorName!: string;
  actorRole?: string;
  /** The mutation field (`startBackup`), or `task.<TYPE>.<STATE>` for a task outcome. */
  action!: string;
  /** No foreign key: the trail outlives the projects it names. */
  projectId?: string;
  /** Global IDs of the objects concerned (given in the input, or created). */
  targetIds: string[] & Opt = [];
  /** `OK`, or the error's code (`FORBIDDEN`, `NOT_FOUND`, `INVALID`, `FAILED`…). */
  result!: string;
  /** A short explanation, never input values nor secrets. */
  message?: string;
  /** The HTTP request that caused it, when known. */
  requestId?: string;
}

export const AuditEventSchema = new EntitySchema<AuditEvent>({
  class: AuditEvent,
  indexes: [{ properties: ['projectId', 'id'] }, { properties: ['actorId', 'id'] }],
  properties: {
    id: { type: 'uuid', primary: true },
    at: { type: 'Date', columnType: 'timestamptz' },
    actorId: { type: 'uuid', nullable: true },
    actorName: { type: 'string', length: 200 },
    actorRole: { type: 'string', length: 20, nullable: true },
    action: { type: 'string', length: 100 },
    projectId: { type: 'uuid', nullable: true },
    targetIds: { type: 'text[]' },
    result: { type: 'string', length: 64 },
    message: { type: 'string', length: 500, nullable: true },
    requestId: { type: 'string', length: 100, nullable: true },
  },
});
