/**
 * How the agent starts a trial: a runner that speaks `hwopt-trial/1`, or a
 * training script that does not implement it, started from an argv template.
 */
import { InvalidInputError } from '@hwopt/common';
import type { TrialSpec } from './protocol.ts';

export type RunnerConfig =
  | {
      kind: 'protocol';
      /** Executable; started without a shell. */
      command: string;
      args?: string[];
      /** Added to the agent's environment. */
      env?: Record<string, string>;
      cwd?: string;
    }
  | {
      kind: 'command-template';
      /**
       * argv with placeholders, substituted into each element without a shell:
       * {batch_size} {layers} {hidden_channels} {iterations} {trial_id}
       * {workload} {device_index} {device_uuid}. Success means exit code 0.
       */
      argv: string[];
      env?: Record<string, string>;
      cwd?: string;
    };

export const TEMPLATE_PLACEHOLDERS = [
  'batch_size',
  'layers',
  'hidden_channels',
  'iterations',
  'trial_id',
  'workload',
  'device_index',
  'device_uuid',
] as const;

export type TemplatePlaceholder = (typeof TEMPLATE_PLACEHOLDERS)[number];

/** `{name}` with a lower-case identifier; other braces (JSON, shell syntax) stay literal. */
const PLACEHOLDER_PATTERN = /\{([a-z_][a-z0-9_]*)\}/g;

export class InvalidRunnerConfigError extends InvalidInputError {
  constructor(detail: string) {
    super(`Invalid trial runner config: ${detail}.`);
  }
}

function validateEnv(env: Record<string, string> | undefined): void {
  for (const [name, value] of Object.entries(env ?? {})) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) || typeof value !== 'string') {
      throw new InvalidRunnerConfigError(`env entry ${JSON.stringify(name)} must be a variable name with a string value`);
    }
  }
}

/** Checks a runner config; throws InvalidRunnerConfigError naming the bad field. */
export function validateRunnerConfig(runner: RunnerConfig): void {
  if (runner?.kind === 'protocol') {
    if (typeof runner.command !== 'string' || runner.command.length === 0) {
      throw new InvalidRunnerConfigError('command must be a non-empty string, the runner executable');
    }
    if (runner.args !== undefined && (!Array.isArray(runner.args) || !runner.args.every((arg) => typeof arg === 'string'))) {
      throw new InvalidRunnerConfigError('args must be an array of strings');
    }
  } else if (runner?.kind === 'command-template') {
    if (!Array.isArray(runner.argv) || runner.argv.length === 0 || !runner.argv.every((arg) => typeof arg === 'string')) {
      throw new InvalidRunnerConfigError('argv must be a non-empty array of strings, the command and its arguments');
    }
    if (runner.argv[0].length === 0) throw new InvalidRunnerConfigError('argv[0] must name the executable');
    for (const arg of runner.argv) {
      for (const match of arg.matchAll(PLACEHOLDER_PATTERN)) {
        if (!(TEMPLATE_PLACEHOLDERS as readonly string[]).includes(match[1])) {
          throw new InvalidRunnerConfigError(`argv element ${JSON.stringify(arg)} uses unknown placeholder {${match[1]}}; known placeholders: ${TEMPLATE_PLACEHOLDERS.map((name) => `{${name}}`).join(' ')}`);
        }
      }
    }
  } else {
    throw new InvalidRunnerConfigError(`kind must be "protocol" or "command-template", got ${JSON.stringify((runner as { kind?: unknown })?.kind)}`);
  }
  validateEnv(runner.env);
}

function placeholderValues(spec: TrialSpec): Record<TemplatePlaceholder, string> {
  return {
    batch_size: String(spec.batchSize),
    layers: String(spec.architecture.layers),
    hidden_channels: String(spec.architecture.hiddenChannels),
    iterations: String(spec.iterations),
    trial_id: spec.trialId,
    workload: spec.workload,
    device_index: String(spec.device.index),
    device_uuid: spec.device.uuid,
  };
}

/** Substitutes the spec into each argv element; no element is split or passed to a shell. */
export function expandCommandTemplate(argv: string[], spec: TrialSpec): string[] {
  const values = placeholderValues(spec);
  return argv.map((arg) => arg.replace(PLACEHOLDER_PATTERN, (whole, name: string) => values[name as TemplatePlaceholder] ?? whole));
}
