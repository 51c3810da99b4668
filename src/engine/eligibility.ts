// Which data movers may run a task: those of the node configuration that serves the task's
// instance — its hypervisor's, else its zone's, else its cloud's — or the unassigned ones.
// Maintenance of a policy or a destination (PRUNE, VERIFY) serves no instance: it goes to live
// data movers that may write the destination — unassigned ones first, since they write anywhere.
import type { EntityManager } from '@mikro-orm/postgresql';
import { Cloud, DataMover, Instance, NodeConfiguration, Policy, type Task } from '../db/entities/index.ts';
import { HEARTBEAT_MS } from './data-mover.ts';

export async function nodeConfigurationFor(em: EntityManager, task: Task): Promise<string | null> {
  if (task.instance) {
    const instance = await em.findOne(Instance, task.instance.id, { populate: ['hypervisor', 'zone', 'cloud'], filters: false });
    const id = instance?.hypervisor?.nodeConfiguration?.id ?? instance?.zone?.nodeConfiguration?.id ?? instance?.cloud.nodeConfiguration?.id;
    if (id) return id;
  }
  if (task.cloud) {
    const cloud = await em.findOne(Cloud, task.cloud.id, { filters: false });
    if (cloud?.nodeConfiguration) return cloud.nodeConfiguration.id;
    return null;
  }
  return maintenanceNodeConfiguration(em, task);
}

async function maintenanceNodeConfiguration(em: EntityManager, task: Task): Promise<string | null> {
  const policy = task.policy ? await em.findOne(Policy, task.policy.id, { filters: false }) : null;
  const destinationId = task.destination?.id ?? policy?.destination?.id;
  const live = await em.find(DataMover, { stoppedAt: null, lastHeartbeatAt: { $gt: new Date(Date.now() - 6 * HEARTBEAT_MS) } }, { filters: false, orderBy: { lastHeartbeatAt: 'desc' } });
  if (live.length === 0 || live.some((m) => !m.nodeConfiguration)) return null;
  for (const m of live) {
    const nc = m.nodeConfiguration!.id;
    if (!destinationId || (await mayWrite(em, nc, destinationId))) return nc;
  }
  return null;
}

/** Whether a node configuration may write to a destination (none listed: every destination). */
export async function mayWrite(em: EntityManager, nodeConfigurationId: string | null, destinationId: string): Promise<boolean> {
  if (!nodeConfigurationId) return true;
  const nc = await em.findOne(NodeConfiguration, nodeConfigurationId, { populate: ['destinations'], filters: false });
  if (!nc || nc.destinations.count() === 0) return true;
  return nc.destinations.getItems().some((d) => d.id === destinationId);
}
