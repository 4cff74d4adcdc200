import { HwoptError } from '@hwopt/common';

export class AgentNotConnectedError extends HwoptError {
  constructor(nodeName: string) {
    super('AGENT_NOT_CONNECTED', `Node ${nodeName} has no connected agent; start hwopt-agent on it or wait for it to reconnect.`);
  }
}

export class TrialLostError extends HwoptError {
  constructor(nodeName: string, trialId: string, reason: string) {
    super('TRIAL_LOST', `Trial ${trialId} on node ${nodeName} was lost: ${reason}.`);
  }
}

export class DescribeFailedError extends HwoptError {
  constructor(nodeName: string, workload: string, detail: string) {
    super('DESCRIBE_FAILED', `Node ${nodeName} could not count parameters for workload ${workload}: ${detail}. Check the agent's runner configuration for this workload.`);
  }
}

export class UnknownNodeError extends HwoptError {
  constructor(nodeName: string) {
    super('UNKNOWN_NODE', `No node named ${JSON.stringify(nodeName)} is registered; list nodes with \`hwopt fleet\`.`);
  }
}
