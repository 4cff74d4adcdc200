/**
 * Worker thread of the load benchmark: runs a share of the simulated
 * agents and posts their summed counts once a second.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { loadTwin } from '@hwopt/twin';
import { SimulatedAgent, type SimulatedAgentCounts } from './simulated-agent.ts';

export interface WorkerInput {
  address: string;
  twinFile: string;
  nodeNames: string[];
  /** Driver version per node name; the twin's where unset. */
  driverVersions: Record<string, string>;
  /** Time over which this worker starts its agents, in ms. */
  rampMs: number;
}

export interface WorkerReport {
  connected: number;
  counts: SimulatedAgentCounts;
}

const input = workerData as WorkerInput;
const twin = loadTwin(input.twinFile);
const agents = input.nodeNames.map((nodeName) => new SimulatedAgent({ address: input.address, nodeName, twin, driverVersion: input.driverVersions[nodeName] }));
agents.forEach((agent, i) => setTimeout(() => agent.start(), (input.rampMs * i) / Math.max(1, agents.length)));

const report = (): WorkerReport => {
  const counts: SimulatedAgentCounts = { sessions: 0, assignments: 0, resultsSent: 0, acknowledgements: 0, describes: 0, rejects: 0 };
  let connected = 0;
  for (const agent of agents) {
    if (agent.connected) connected += 1;
    for (const key of Object.keys(counts) as (keyof SimulatedAgentCounts)[]) counts[key] += agent.counts[key];
  }
  return { connected, counts };
};
const timer = setInterval(() => parentPort!.postMessage(report()), 1000);
parentPort!.on('message', (message: string) => {
  if (message !== 'stop') return;
  clearInterval(timer);
  for (const agent of agents) agent.stop();
  parentPort!.postMessage(report());
  parentPort!.close();
});
