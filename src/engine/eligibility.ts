// Which data movers may run a task: those of the node configuration that serves the task's
// instance — its hypervisor's, else its zone's, else its cloud's — or the unassigned ones.
import type { EntityManager } from '@mikro-orm/postgresql';
import { Cloud, Instance, NodeConfiguration, type Task } from '../db/entities/index.ts';

export async function nodeConfigurationFor(em: EntityManager, task: Task): Promise<string | null> {
  if (task.instance) {
    const instance = await em.findOne(Instance, task.instance.id, { populate: ['hypervisor', 'zone', 'cloud'], filters: false });
    const id = instance?.hypervisor?.nodeConfiguration?.id ?? instance?.zone?.nodeConfiguration?.id ?? instance?.cloud.nodeConfiguration?.id;
    if (id) return id;
  }
  if (task.cloud) {
    const cloud = await em.findOne(Cloud, task.cloud.id, { filters: false });
    if (cloud?.nodeConfiguration) return cloud.nodeConfiguration.id;
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
