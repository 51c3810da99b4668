// A running worker process that moves data; it registers and heartbeats.
import { EntitySchema, type Opt } from '@mikro-orm/core';
import { BaseEntity } from './base.ts';
import type { NodeConfiguration } from './node-configuration.ts';

export class DataMover extends BaseEntity {
  name!: string;
  host!: string;
  pid?: number;
  version?: string;
  nodeConfiguration?: NodeConfiguration;
  lastHeartbeatAt: Date & Opt = new Date();
  runningTasks: number & Opt = 0;
  stoppedAt?: Date;
  /** The queue's worker IDs of this process, to release its jobs if it dies. */
  workerIds: string[] & Opt = [];
}

export const DataMoverSchema = new EntitySchema<DataMover, BaseEntity>({
  class: DataMover,
  extends: 'BaseEntity',
  properties: {
    name: { type: 'string', length: 255, unique: true },
    host: { type: 'string', length: 255 },
    pid: { type: 'integer', nullable: true },
    version: { type: 'string', length: 64, nullable: true },
    nodeConfiguration: { kind: 'm:1', entity: 'NodeConfiguration', nullable: true, deleteRule: 'set null' },
    lastHeartbeatAt: { type: 'Date', columnType: 'timestamptz' },
    runningTasks: { type: 'integer' },
    stoppedAt: { type: 'Date', columnType: 'timestamptz', nullable: true },
    workerIds: { type: 'json', defaultRaw: `'[]'` },
  },
});
