import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { HealthImplementation, type ServingStatus } from 'grpc-health-check';
import { DEFAULT_COORDINATOR_PORT } from '@hwopt/proto';
import { resolveCoordinatorOptions } from '../src/options.ts';

// Static checks of docker/ against the code it packages: ports, bins, flags,
// environment variables and certificate files. No Docker engine runs here,
// so nothing is built; the flags are checked against the bins' real --help.

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const DOCKER_DIR = join(REPO_ROOT, 'docker');
const COORDINATOR_BIN = 'apps/coordinator/bin/hwopt-coordinator.js';
const AGENT_BIN = 'apps/agent/bin/hwopt-agent.js';
const HEALTHCHECK_SCRIPT = 'docker/healthcheck.mjs';
// The agent's own node-name rule (apps/agent/src/commands/run.ts).
const NODE_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

function read(path: string): string {
  return readFileSync(join(REPO_ROOT, path), 'utf8');
}

// ---------------------------------------------------------------------------
// Dockerfile: instructions per stage, with line continuations joined.

interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

interface Stage {
  from: string;
  name: string | undefined;
  instructions: Instruction[];
}

interface Dockerfile {
  /** ARG defaults declared before the first FROM. */
  globalArgs: Record<string, string>;
  stages: Stage[];
}

function parseDockerfile(text: string): Dockerfile {
  const lines = text.split('\n');
  const instructions: Instruction[] = [];
  let pending: { text: string; line: number } | undefined;
  lines.forEach((raw, index) => {
    const trimmed = raw.trim();
    // Docker drops comment lines, also inside a continued instruction.
    if (trimmed.startsWith('#') || trimmed === '') return;
    const continued = trimmed.endsWith('\\');
    const piece = continued ? trimmed.slice(0, -1).trim() : trimmed;
    pending = pending ? { text: `${pending.text} ${piece}`, line: pending.line } : { text: piece, line: index + 1 };
    if (continued) return;
    const match = /^([A-Za-z]+)\s+(.*)$/.exec(pending.text);
    if (!match) throw new Error(`line ${pending.line}: cannot read instruction ${JSON.stringify(pending.text)}`);
    instructions.push({ keyword: match[1]!.toUpperCase(), args: match[2]!, line: pending.line });
    pending = undefined;
  });
  if (pending) throw new Error(`line ${pending.line}: the file ends inside a continued instruction`);

  const globalArgs: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const instruction of instructions) {
    if (instruction.keyword === 'FROM') {
      const match = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(instruction.args);
      if (!match) throw new Error(`line ${instruction.line}: cannot read FROM ${instruction.args}`);
      stages.push({ from: match[1]!, name: match[2], instructions: [] });
    } else if (stages.length === 0) {
      if (instruction.keyword !== 'ARG') throw new Error(`line ${instruction.line}: only ARG may come before the first FROM`);
      const [name, value = ''] = instruction.args.split('=', 2);
      globalArgs[name!] = value;
    } else {
      stages.at(-1)!.instructions.push(instruction);
    }
  }
  return { globalArgs, stages };
}

function loadDockerfile(path: string): Dockerfile {
  return parseDockerfile(read(path));
}

function finalStage(dockerfile: Dockerfile): Stage {
  return dockerfile.stages.at(-1)!;
}

/** Resolves the image a FROM names, replacing `${ARG}` by the global ARG default. */
function baseImage(dockerfile: Dockerfile, stage: Stage): string {
  return stage.from.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, braced: string | undefined, bare: string | undefined) => dockerfile.globalArgs[(braced ?? bare)!] ?? '');
}

function instructionsOf(stage: Stage, keyword: string): Instruction[] {
  return stage.instructions.filter((i) => i.keyword === keyword);
}

/** Parses the JSON array of an exec-form ENTRYPOINT, CMD or HEALTHCHECK CMD. */
function execForm(args: string): string[] {
  const parsed: unknown = JSON.parse(args);
  if (!Array.isArray(parsed) || parsed.some((a) => typeof a !== 'string')) throw new Error(`${args} is not an exec-form array of strings`);
  return parsed as string[];
}

function singleExecForm(stage: Stage, keyword: string): string[] {
  const found = instructionsOf(stage, keyword);
  expect(found, `${keyword} instructions in the final stage`).toHaveLength(1);
  return execForm(found[0]!.args);
}

function healthcheckCommand(stage: Stage): string[] {
  const found = instructionsOf(stage, 'HEALTHCHECK');
  expect(found, 'HEALTHCHECK instructions in the final stage').toHaveLength(1);
  const match = /(?:^|\s)CMD\s+(\[.*\])$/.exec(found[0]!.args);
  if (!match) throw new Error(`HEALTHCHECK ${found[0]!.args} has no exec-form CMD`);
  return execForm(match[1]!);
}

// ---------------------------------------------------------------------------
// Compose file: a YAML subset of block mappings, block sequences, plain and
// quoted scalars and JSON flow sequences. Anything else (anchors, block
// scalars, flow mappings, merge keys) is rejected, so the compose file stays
// in what this reader understands. Scalars stay strings.

type YamlValue = string | null | YamlValue[] | { [key: string]: YamlValue };
type YamlMap = { [key: string]: YamlValue };

interface YamlLine {
  indent: number;
  content: string;
  line: number;
}

function stripComment(text: string): string {
  let quote: string | null = null;
  for (let i = 0; i < text.length; i++) {
    const char = text[i]!;
    if (quote) {
      if (char === quote) quote = null;
    } else if (char === '"' || char === "'") {
      quote = char;
    } else if (char === '#' && (i === 0 || /\s/.test(text[i - 1]!))) {
      return text.slice(0, i).trimEnd();
    }
  }
  return text.trimEnd();
}

function parseYamlSubset(text: string): YamlValue {
  const lines: YamlLine[] = [];
  text.split('\n').forEach((raw, index) => {
    if (raw.includes('\t')) throw new Error(`line ${index + 1}: tabs are not valid YAML indentation`);
    const content = stripComment(raw);
    if (content.trim() === '') return;
    lines.push({ indent: content.length - content.trimStart().length, content: content.trim(), line: index + 1 });
  });
  let position = 0;

  function scalar(value: string, line: number): YamlValue {
    if (value.startsWith('[')) return JSON.parse(value) as YamlValue;
    if (value.startsWith('"')) return JSON.parse(value) as string;
    if (value.startsWith("'")) {
      if (!value.endsWith("'") || value.length < 2) throw new Error(`line ${line}: unterminated single-quoted string`);
      return value.slice(1, -1).replaceAll("''", "'");
    }
    if (/^[{&*|>!%@`]/.test(value)) throw new Error(`line ${line}: ${JSON.stringify(value)} uses YAML outside the supported subset`);
    return value;
  }

  function block(indent: number): YamlValue {
    const first = lines[position]!;
    return first.content === '-' || first.content.startsWith('- ') ? sequence(indent) : mapping(indent);
  }

  function nested(parentIndent: number): YamlValue {
    const next = lines[position];
    return next && next.indent > parentIndent ? block(next.indent) : null;
  }

  function mapping(indent: number): YamlMap {
    const result: YamlMap = {};
    while (position < lines.length && lines[position]!.indent === indent) {
      const { content, line } = lines[position]!;
      const match = /^([A-Za-z0-9_.-]+):(?:\s+(.*))?$/.exec(content);
      if (!match) throw new Error(`line ${line}: expected KEY: VALUE, got ${JSON.stringify(content)}`);
      const key = match[1]!;
      if (key in result) throw new Error(`line ${line}: duplicate key ${key}`);
      position++;
      result[key] = match[2] === undefined ? nested(indent) : scalar(match[2], line);
    }
    if (position < lines.length && lines[position]!.indent > indent) throw new Error(`line ${lines[position]!.line}: unexpected indentation`);
    return result;
  }

  function sequence(indent: number): YamlValue[] {
    const result: YamlValue[] = [];
    while (position < lines.length && lines[position]!.indent === indent && (lines[position]!.content === '-' || lines[position]!.content.startsWith('- '))) {
      const current = lines[position]!;
      const rest = current.content.slice(1).trimStart();
      if (rest === '') {
        position++;
        result.push(nested(indent));
      } else if (/^[A-Za-z0-9_.-]+:(\s|$)/.test(rest)) {
        // `- key: value` starts a mapping whose keys line up with `key`.
        const itemIndent = indent + (current.content.length - rest.length);
        lines[position] = { indent: itemIndent, content: rest, line: current.line };
        result.push(mapping(itemIndent));
      } else {
        position++;
        result.push(scalar(rest, current.line));
      }
    }
    return result;
  }

  const document = block(0);
  if (position < lines.length) throw new Error(`line ${lines[position]!.line}: unexpected content`);
  return document;
}

/** Replaces compose `${VAR:-default}` by its default and other variables by `<VAR>`. */
function withDefaults(value: string): string {
  return value.replace(/\$\{(\w+)(?:(:?-)([^}]*)|(:?\?)[^}]*)?\}/g, (_, name: string, dash: string | undefined, fallback: string | undefined) => (dash ? fallback! : `<${name}>`));
}

function asMap(value: YamlValue | undefined, label: string): YamlMap {
  if (value === null || value === undefined || typeof value !== 'object' || Array.isArray(value)) throw new Error(`${label} is not a mapping`);
  return value;
}

function asStrings(value: YamlValue | undefined, label: string): string[] {
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) throw new Error(`${label} is not a list of strings`);
  return value as string[];
}

// ---------------------------------------------------------------------------
// Command lines against the options a bin's --help lists.

interface HelpOption {
  takesValue: boolean;
}

async function helpOptions(args: string[]): Promise<Map<string, HelpOption>> {
  const { stdout } = await execa(process.execPath, args, { cwd: REPO_ROOT, timeout: 60_000 });
  const options = new Map<string, HelpOption>();
  for (const line of stdout.split('\n')) {
    const match = /^\s+(?:-\w, )?(--[a-z][a-z0-9-]*)(\s+[<[])?/.exec(line);
    if (match) options.set(match[1]!, { takesValue: match[2] !== undefined });
  }
  return options;
}

interface ParsedCommand {
  positionals: string[];
  flags: Map<string, string | true>;
}

function parseCommand(args: string[], options: Map<string, HelpOption>, label: string): ParsedCommand {
  const parsed: ParsedCommand = { positionals: [], flags: new Map() };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith('--')) {
      parsed.positionals.push(arg);
      continue;
    }
    const option = options.get(arg);
    if (!option) throw new Error(`${label}: ${arg} is not an option that --help lists (${[...options.keys()].join(' ')})`);
    if (!option.takesValue) {
      parsed.flags.set(arg, true);
      continue;
    }
    const value = args[++i];
    if (value === undefined || value.startsWith('--')) throw new Error(`${label}: ${arg} needs a value`);
    parsed.flags.set(arg, value);
  }
  return parsed;
}

function flagValue(command: ParsedCommand, flag: string): string | undefined {
  const value = command.flags.get(flag);
  return typeof value === 'string' ? value : undefined;
}

function hostAndPort(address: string): { host: string; port: number } {
  const match = /^(.+):(\d{1,5})$/.exec(address);
  if (!match) throw new Error(`${address} is not HOST:PORT`);
  return { host: match[1]!, port: Number(match[2]) };
}

// ---------------------------------------------------------------------------
// Repository facts the images rely on.

/** Lists every `bin` of the workspace packages as repository-relative paths. */
function workspaceBins(): Map<string, string> {
  const bins = new Map<string, string>();
  for (const group of ['apps', 'libs', 'tools']) {
    for (const entry of readdirSync(join(REPO_ROOT, group))) {
      const manifestPath = join(REPO_ROOT, group, entry, 'package.json');
      if (!existsSync(manifestPath)) continue;
      const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { bin?: Record<string, string> };
      for (const [name, path] of Object.entries(manifest.bin ?? {})) bins.set(name, relative(REPO_ROOT, join(REPO_ROOT, group, entry, path)));
    }
  }
  return bins;
}

/** Collects the environment variable names the sources read through process.env or os.environ. */
function environmentNamesReadByCode(): Set<string> {
  const names = new Set<string>();
  const roots = ['apps', 'libs', 'runners', 'docker'];
  for (const root of roots) {
    for (const file of readdirSync(join(REPO_ROOT, root), { recursive: true, encoding: 'utf8' })) {
      if (file.split('/').some((part) => part === 'node_modules' || part === 'generated' || part === 'test')) continue;
      if (!/\.(ts|mjs|js|py)$/.test(file)) continue;
      const path = join(REPO_ROOT, root, file);
      if (!statSync(path).isFile()) continue;
      const text = readFileSync(path, 'utf8');
      const patterns = [/process\.env\.([A-Z][A-Z0-9_]*)/g, /process\.env\[['"]([A-Z][A-Z0-9_]*)['"]\]/g, /os\.environ(?:\.get\(|\[)\s*['"]([A-Z][A-Z0-9_]*)['"]/g];
      for (const pattern of patterns) for (const match of text.matchAll(pattern)) names.add(match[1]!);
    }
  }
  return names;
}

/** Checks whether a .dockerignore pattern list excludes a repository-relative path. */
function dockerIgnores(patterns: string[], path: string): boolean {
  let ignored = false;
  for (const raw of patterns) {
    const negated = raw.startsWith('!');
    const pattern = (negated ? raw.slice(1) : raw).replace(/^\/+|\/+$/g, '');
    const source = pattern
      .split('/')
      .map((part) => (part === '**' ? '.*' : part.replace(/[.+^${}()|\\]/g, '\\$&').replaceAll('*', '[^/]*').replaceAll('?', '[^/]')))
      .join('/')
      .replaceAll('.*/', '(?:.*/)?');
    // A pattern that names a folder also excludes everything in it.
    if (new RegExp(`^${source}(?:/.*)?$`).test(path)) ignored = !negated;
  }
  return ignored;
}

function dockerignorePatterns(): string[] {
  return read('.dockerignore')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}

// ---------------------------------------------------------------------------

let coordinatorHelp: Map<string, HelpOption>;
let agentRunHelp: Map<string, HelpOption>;

beforeAll(async () => {
  [coordinatorHelp, agentRunHelp] = await Promise.all([helpOptions([COORDINATOR_BIN, '--help']), helpOptions([AGENT_BIN, 'run', '--help'])]);
});

describe('help parsing', () => {
  it('finds the flags the bins document', () => {
    expect(coordinatorHelp.get('--listen')).toEqual({ takesValue: true });
    expect(coordinatorHelp.get('--insecure')).toEqual({ takesValue: false });
    expect(agentRunHelp.get('--coordinator')).toEqual({ takesValue: true });
    expect(agentRunHelp.get('--allow-busy-gpu')).toEqual({ takesValue: false });
  });
});

describe('yaml subset reader', () => {
  it('reads nested mappings and sequences', () => {
    const text = ['a:', '  b: "x # y"', '  c:', '    - one', '    - k: v', '      m: ["p", "q"]', "  d: 'it''s' # comment", '  e:'].join('\n');
    expect(parseYamlSubset(text)).toEqual({ a: { b: 'x # y', c: ['one', { k: 'v', m: ['p', 'q'] }], d: "it's", e: null } });
  });

  it('rejects anchors and block scalars', () => {
    expect(() => parseYamlSubset('a: &anchor x')).toThrow(/supported subset/);
    expect(() => parseYamlSubset('a: |\n  text')).toThrow(/supported subset/);
    expect(() => parseYamlSubset('a: 1\na: 2')).toThrow(/duplicate key/);
  });

  it('applies compose variable defaults', () => {
    expect(withDefaults('${A:-x}:${B?must}/${C}')).toBe('x:<B>/<C>');
  });
});

describe('dockerignore matching', () => {
  it('matches folders, globs and negations', () => {
    expect(dockerIgnores(['**/node_modules'], 'libs/db/node_modules/pg/index.js')).toBe(true);
    expect(dockerIgnores(['**/*.pem'], 'docker/certs/ca.pem')).toBe(true);
    expect(dockerIgnores(['**/*.pem', '!docker/ca.pem'], 'docker/ca.pem')).toBe(false);
    expect(dockerIgnores(['tmp'], 'tools/tmp')).toBe(false);
  });
});

describe('coordinator image', () => {
  const dockerfile = loadDockerfile('docker/coordinator.Dockerfile');
  const image = finalStage(dockerfile);

  it('exposes the default coordinator port', () => {
    expect(instructionsOf(image, 'EXPOSE').map((i) => i.args)).toEqual([String(DEFAULT_COORDINATOR_PORT)]);
  });

  it('runs the coordinator bin', () => {
    const entrypoint = singleExecForm(image, 'ENTRYPOINT');
    expect(entrypoint).toEqual(['node', COORDINATOR_BIN]);
    expect([...workspaceBins().values()]).toContain(entrypoint[1]);
    expect(existsSync(join(REPO_ROOT, entrypoint[1]!))).toBe(true);
  });

  it('runs as a non-root user', () => {
    const users = instructionsOf(image, 'USER').map((i) => i.args);
    expect(users.length).toBeGreaterThan(0);
    expect(['root', '0', '0:0']).not.toContain(users.at(-1));
  });

  it('default command has valid flags on the exposed port', () => {
    const command = parseCommand(singleExecForm(image, 'CMD'), coordinatorHelp, 'coordinator CMD');
    expect(command.positionals).toEqual([]);
    expect(hostAndPort(flagValue(command, '--listen')!)).toEqual({ host: '0.0.0.0', port: DEFAULT_COORDINATOR_PORT });
  });

  it('health check calls the exposed port', () => {
    const check = healthcheckCommand(image);
    expect(check.slice(0, 2)).toEqual(['node', HEALTHCHECK_SCRIPT]);
    expect(hostAndPort(check[2]!)).toEqual({ host: '127.0.0.1', port: DEFAULT_COORDINATOR_PORT });
    const copies = dockerfile.stages.flatMap((stage) => instructionsOf(stage, 'COPY').map((i) => i.args));
    expect(copies).toContain(`${HEALTHCHECK_SCRIPT} ./${HEALTHCHECK_SCRIPT}`);
  });
});

describe('agent image', () => {
  const dockerfile = loadDockerfile('docker/agent.Dockerfile');
  const image = finalStage(dockerfile);

  it('builds on an NVIDIA CUDA runtime image', () => {
    expect(baseImage(dockerfile, image)).toMatch(/^nvidia\/cuda:\d+\.\d+\.\d+-runtime-ubuntu\d+\.\d+$/);
  });

  it('runs the agent bin', () => {
    const entrypoint = singleExecForm(image, 'ENTRYPOINT');
    expect(entrypoint).toEqual(['node', AGENT_BIN]);
    expect([...workspaceBins().values()]).toContain(entrypoint[1]);
  });

  it('copies node from the build stage', () => {
    const copies = instructionsOf(image, 'COPY').map((i) => i.args);
    expect(copies).toContain('--from=build /usr/local/bin/node /usr/local/bin/node');
    expect(copies).toContain('--from=build /app /app');
  });

  it('runs as a non-root user', () => {
    const users = instructionsOf(image, 'USER').map((i) => i.args);
    expect(users.length).toBeGreaterThan(0);
    expect(['root', '0', '0:0']).not.toContain(users.at(-1));
    // uid 1000 is the uid docker/compose.yaml hands the secret files to.
    const runs = instructionsOf(image, 'RUN').map((i) => i.args).join('\n');
    expect(runs).toMatch(new RegExp(`useradd --uid 1000 [^\\n]*\\b${users.at(-1)}\\b`));
  });

  it('default command is a valid run', () => {
    const command = parseCommand(singleExecForm(image, 'CMD'), agentRunHelp, 'agent CMD');
    expect(command.positionals).toEqual(['run']);
    expect(flagValue(command, '--state-dir')).toBe('/var/lib/hwopt-agent');
  });

  it('asks the runtime for nvidia-smi and CUDA', () => {
    const env = instructionsOf(image, 'ENV').map((i) => i.args).join(' ');
    const capabilities = /NVIDIA_DRIVER_CAPABILITIES=(\S+)/.exec(env)?.[1]?.split(',');
    expect(capabilities).toContain('utility');
    expect(capabilities).toContain('compute');
  });

  it('installs what the visnet runner imports', () => {
    const runner = read('runners/visnet-pdb/runner.py');
    const imported = new Set([...runner.matchAll(/^\s*(?:import|from)\s+(torch\w*)/gm)].map((m) => m[1]!));
    expect([...imported].sort()).toEqual(['torch', 'torch_geometric']);
    const runs = instructionsOf(image, 'RUN').map((i) => i.args).join('\n');
    expect(runs).toMatch(/apt-get install [^\n]*\bpython3\b/);
    // The image verifies the imports at build time; torch_cluster is loaded
    // by torch_geometric's ViSNet for its radius graph.
    const verified = /python3 -c "import ([^"]+)"/.exec(runs)?.[1]?.split(/,\s*/);
    for (const module of [...imported, 'torch_cluster']) {
      expect(runs, `pip install of ${module}`).toMatch(new RegExp(`pip3 install [^\\n]*"${module}[=\\s"]`));
      expect(verified, `import check of ${module}`).toContain(module);
    }
  });
});

describe('image build stages', () => {
  const patterns = dockerignorePatterns();
  const rootManifest = JSON.parse(read('package.json')) as { workspaces: string[]; scripts: Record<string, string> };

  for (const path of ['docker/coordinator.Dockerfile', 'docker/agent.Dockerfile']) {
    const build = loadDockerfile(path).stages.find((stage) => stage.name === 'build')!;

    it(`${basename(path)} copies what npm ci needs`, () => {
      expect(build, 'stage named build').toBeDefined();
      const sources = instructionsOf(build, 'COPY')
        .filter((i) => !i.args.startsWith('--from'))
        .flatMap((i) => i.args.split(/\s+/).slice(0, -1));
      for (const source of sources) {
        expect(existsSync(join(REPO_ROOT, source)), `${source} exists`).toBe(true);
        expect(dockerIgnores(patterns, source), `${source} is not in .dockerignore`).toBe(false);
      }
      // Workspaces, lockfile, the proto sources of `npm run generate` and
      // the tsconfig that prisma generate loads through prisma.config.ts.
      const workspaceFolders = rootManifest.workspaces.map((glob) => glob.split('/')[0]!);
      for (const needed of ['package.json', 'package-lock.json', 'tsconfig.base.json', 'buf.yaml', 'proto', 'runners', ...workspaceFolders]) {
        expect(sources, `COPY of ${needed}`).toContain(needed);
      }
    });

    it(`${basename(path)} keeps devDependencies for generate`, () => {
      expect(rootManifest.scripts.prepare).toBe('npm run generate');
      const runs = instructionsOf(build, 'RUN').map((i) => i.args);
      const ci = runs.findIndex((run) => /\bnpm ci\b/.test(run));
      const prune = runs.findIndex((run) => /\bnpm prune --omit=dev\b/.test(run));
      expect(ci).toBeGreaterThanOrEqual(0);
      expect(runs[ci]).not.toMatch(/--omit=(dev|optional)|--production|--ignore-scripts/);
      expect(prune).toBeGreaterThan(ci);
    });
  }

  it('dockerignore keeps secrets and installs out', () => {
    for (const path of ['node_modules', 'libs/db/node_modules', 'libs/proto/src/generated', 'docker/certs/ca.pem', 'docker/.env', '.git']) {
      expect(dockerIgnores(patterns, path), path).toBe(true);
    }
  });
});

describe('compose file', () => {
  const compose = asMap(parseYamlSubset(read('docker/compose.yaml')), 'compose file');
  const services = asMap(compose.services, 'services');
  const secrets = asMap(compose.secrets, 'secrets');
  const service = (name: string) => asMap(services[name], `service ${name}`);
  const coordinatorCommand = () => parseCommand(asStrings(service('coordinator').command, 'coordinator command').map(withDefaults), coordinatorHelp, 'compose coordinator command');
  const agentCommand = () => parseCommand(asStrings(service('agent').command, 'agent command').map(withDefaults), agentRunHelp, 'compose agent command');

  it('has postgres, coordinator and agent', () => {
    expect(Object.keys(services).sort()).toEqual(['agent', 'coordinator', 'postgres']);
  });

  it('builds the repository images', () => {
    for (const [name, dockerfile] of [['coordinator', 'docker/coordinator.Dockerfile'], ['agent', 'docker/agent.Dockerfile']] as const) {
      const build = asMap(service(name).build, `${name} build`);
      expect(resolve(DOCKER_DIR, build.context as string), `${name} build context`).toBe(resolve(REPO_ROOT));
      expect(build.dockerfile, `${name} dockerfile`).toBe(dockerfile);
    }
  });

  it('coordinator listens on all interfaces at the default port', () => {
    const command = coordinatorCommand();
    expect(command.positionals).toEqual([]);
    expect(hostAndPort(flagValue(command, '--listen')!)).toEqual({ host: '0.0.0.0', port: DEFAULT_COORDINATOR_PORT });
  });

  it('coordinator command passes the options check', () => {
    const command = coordinatorCommand();
    expect(command.flags.has('--insecure'), 'plaintext is not used in compose').toBe(false);
    const certFile = flagValue(command, '--tls-cert');
    const options = resolveCoordinatorOptions({
      listen: flagValue(command, '--listen'),
      tls: certFile ? { certFile, keyFile: flagValue(command, '--tls-key')!, caFile: flagValue(command, '--tls-ca') } : undefined,
      agentTokenFile: flagValue(command, '--agent-token-file'),
      opsTokensFile: flagValue(command, '--ops-tokens-file'),
      insecure: command.flags.has('--insecure'),
    });
    expect(options.tls?.caFile, 'mutual TLS').toBeDefined();
    expect(options.opsTokensFile, 'ops tokens').toBeDefined();
  });

  it('publishes the coordinator port', () => {
    const ports = asStrings(service('coordinator').ports, 'coordinator ports').map(withDefaults);
    expect(ports).toEqual([`127.0.0.1:${DEFAULT_COORDINATOR_PORT}:${DEFAULT_COORDINATOR_PORT}`]);
  });

  it('agent dials the coordinator service', () => {
    const command = agentCommand();
    expect(command.positionals).toEqual(['run']);
    const target = hostAndPort(flagValue(command, '--coordinator')!);
    expect(Object.keys(services)).toContain(target.host);
    expect(target.host).toBe('coordinator');
    expect(target.port).toBe(hostAndPort(flagValue(coordinatorCommand(), '--listen')!).port);
  });

  it('agent node name matches its certificate', () => {
    const nodeName = flagValue(agentCommand(), '--node-name')!;
    expect(nodeName).toMatch(NODE_NAME_PATTERN);
    expect(withDefaults(asMap(secrets.node_cert, 'node_cert').file as string)).toBe(`./certs/node-${nodeName}.pem`);
    expect(withDefaults(asMap(secrets.node_key, 'node_key').file as string)).toBe(`./certs/node-${nodeName}-key.pem`);
  });

  it('agent state dir is a volume', () => {
    const stateDir = flagValue(agentCommand(), '--state-dir')!;
    const volumes = asStrings(service('agent').volumes, 'agent volumes');
    expect(volumes.map((v) => v.split(':')[1])).toContain(stateDir);
    expect(Object.keys(asMap(compose.volumes, 'volumes'))).toContain(volumes.find((v) => v.endsWith(`:${stateDir}`))!.split(':')[0]);
  });

  it('agent reserves NVIDIA GPUs', () => {
    const deploy = asMap(service('agent').deploy, 'agent deploy');
    const devices = asMap(asMap(deploy.resources, 'resources').reservations, 'reservations').devices;
    expect(Array.isArray(devices)).toBe(true);
    const device = asMap((devices as YamlValue[])[0], 'device');
    expect(device.driver).toBe('nvidia');
    expect(device.capabilities).toEqual(['gpu']);
  });

  it('TLS and token files are declared secrets', () => {
    const healthcheck = asStrings(asMap(service('coordinator').healthcheck, 'healthcheck').test, 'healthcheck test');
    const uses: [string, string[]][] = [
      ['coordinator', asStrings(service('coordinator').command, 'command').concat(healthcheck)],
      ['agent', asStrings(service('agent').command, 'command')],
    ];
    for (const [name, args] of uses) {
      const granted = asStrings(service(name).secrets, `${name} secrets`);
      const fileFlags = args.filter((arg) => /^--(tls-(ca|cert|key)|[a-z-]*token[a-z-]*-file)$/.test(arg));
      expect(fileFlags.length, `${name} TLS flags`).toBeGreaterThanOrEqual(3);
      for (const flag of fileFlags) {
        const path = args[args.indexOf(flag) + 1]!;
        const secret = /^\/run\/secrets\/([\w-]+)$/.exec(path)?.[1];
        expect(granted, `${name}: ${flag} ${path}`).toContain(secret);
        expect(Object.keys(secrets), `${name}: ${flag} ${path}`).toContain(secret);
      }
    }
  });

  it('environment names are read by the code', () => {
    const known = environmentNamesReadByCode();
    expect(known).toContain('DATABASE_URL');
    expect(known).toContain('HWOPT_LOG_LEVEL');
    for (const name of ['coordinator', 'agent']) {
      for (const variable of Object.keys(asMap(service(name).environment, `${name} environment`))) {
        expect(known, `${name} sets ${variable}`).toContain(variable);
      }
    }
  });

  it('database URL matches the postgres service', () => {
    const postgres = asMap(service('postgres').environment, 'postgres environment');
    const raw = asMap(service('coordinator').environment, 'coordinator environment').DATABASE_URL as string;
    const url = new URL(withDefaults(raw));
    expect(url.protocol).toBe('postgresql:');
    expect(url.hostname).toBe('postgres');
    expect(url.port).toBe('5432');
    expect(url.username).toBe(postgres.POSTGRES_USER);
    expect(url.pathname).toBe(`/${postgres.POSTGRES_DB}`);
    // The same compose variable sets the password on both sides.
    const passwordVariable = (value: string) => /\$\{(\w+)[:?}]/.exec(value)?.[1];
    expect(passwordVariable(raw.split('@')[0]!)).toBe(passwordVariable(postgres.POSTGRES_PASSWORD as string));
  });

  it('health check targets the listen port', () => {
    const test = asStrings(asMap(service('coordinator').healthcheck, 'healthcheck').test, 'healthcheck test');
    expect(test.slice(0, 3)).toEqual(['CMD', 'node', HEALTHCHECK_SCRIPT]);
    expect(hostAndPort(test[3]!).port).toBe(hostAndPort(flagValue(coordinatorCommand(), '--listen')!).port);
  });
});

// ---------------------------------------------------------------------------
// docker/healthcheck.mjs against a real gRPC health service, over plaintext
// and over mutual TLS with certificates from tools/certs/make-certs.sh.

async function startHealthServer(status: ServingStatus, credentials = ServerCredentials.createInsecure()): Promise<{ port: number; server: Server }> {
  const server = new Server();
  new HealthImplementation({ '': status }).addToServer(server);
  const port = await new Promise<number>((done, fail) => server.bindAsync('127.0.0.1:0', credentials, (error, bound) => (error ? fail(error) : done(bound))));
  return { port, server };
}

async function runHealthcheck(args: string[]): Promise<{ exitCode: number | undefined; stderr: string }> {
  const result = await execa(process.execPath, [join(REPO_ROOT, HEALTHCHECK_SCRIPT), ...args], { reject: false, timeout: 30_000 });
  return { exitCode: result.exitCode, stderr: String(result.stderr) };
}

describe('healthcheck script', () => {
  const servers: Server[] = [];
  afterAll(() => {
    for (const server of servers) server.forceShutdown();
  });

  it('passes on SERVING', async () => {
    const { port, server } = await startHealthServer('SERVING');
    servers.push(server);
    expect(await runHealthcheck([`127.0.0.1:${port}`])).toEqual({ exitCode: 0, stderr: '' });
  });

  it('fails on NOT_SERVING', async () => {
    const { port, server } = await startHealthServer('NOT_SERVING');
    servers.push(server);
    const result = await runHealthcheck([`127.0.0.1:${port}`]);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(/reports NOT_SERVING/);
  });

  it('fails when nothing listens', async () => {
    const { port, server } = await startHealthServer('SERVING');
    server.forceShutdown();
    const result = await runHealthcheck([`127.0.0.1:${port}`, '--timeout-ms', '2000']);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(/failed/);
  });

  it('rejects a bad target', async () => {
    const result = await runHealthcheck(['not-an-address']);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(/is not HOST:PORT/);
  });

  describe('over mutual TLS', () => {
    const openssl = commandOnPath('openssl');
    let certsDir: string;

    beforeAll(async () => {
      if (!openssl) return;
      certsDir = mkdtempSync(join(tmpdir(), 'hwopt-docker-certs-'));
      // The command docker/compose.yaml documents, writing into the temporary folder.
      const [script, outDir, ...args] = documentedCommand(read('docker/compose.yaml'), 'tools/certs/make-certs.sh');
      expect(outDir).toBe('docker/certs');
      await execa('bash', [join(REPO_ROOT, script!), join(certsDir, 'certs'), ...args]);
    });

    afterAll(() => {
      if (certsDir) rmSync(certsDir, { recursive: true, force: true });
    });

    /** The compose health check's arguments, with /run/secrets paths mapped to the generated files. */
    function composeHealthcheckArgs(port: number): string[] {
      const compose = asMap(parseYamlSubset(read('docker/compose.yaml')), 'compose file');
      const secrets = asMap(compose.secrets, 'secrets');
      const coordinator = asMap(asMap(compose.services, 'services').coordinator, 'coordinator');
      const test = asStrings(asMap(coordinator.healthcheck, 'healthcheck').test, 'healthcheck test');
      return test.slice(3).map((arg, i) => {
        if (i === 0) return `127.0.0.1:${port}`;
        const secret = /^\/run\/secrets\/([\w-]+)$/.exec(arg)?.[1];
        if (!secret) return arg;
        return join(certsDir, withDefaults(asMap(secrets[secret], secret).file as string));
      });
    }

    it.skipIf(!openssl)('compose check passes with its certificate', async () => {
      const server = readFileSync(join(certsDir, 'certs/server.pem'));
      const key = readFileSync(join(certsDir, 'certs/server-key.pem'));
      const ca = readFileSync(join(certsDir, 'certs/ca.pem'));
      const { port, server: grpcServer } = await startHealthServer('SERVING', ServerCredentials.createSsl(ca, [{ cert_chain: server, private_key: key }], true));
      servers.push(grpcServer);
      const args = composeHealthcheckArgs(port);
      expect(await runHealthcheck(args)).toEqual({ exitCode: 0, stderr: '' });
      // Without a client certificate the handshake fails, which the check reports.
      const caOnly = [args[0]!, '--tls-ca', join(certsDir, 'certs/ca.pem'), '--timeout-ms', '3000'];
      expect((await runHealthcheck(caOnly)).exitCode).toBe(1);
    });

    it.skipIf(!openssl)('server certificate names the compose service', async () => {
      const { stdout } = await execa('openssl', ['x509', '-in', join(certsDir, 'certs/server.pem'), '-noout', '-ext', 'subjectAltName']);
      expect(stdout).toMatch(/DNS:coordinator\b/);
      expect(stdout).toMatch(/IP Address:127\.0\.0\.1\b/);
    });

    it.skipIf(!openssl)('documented command makes every secret', () => {
      const compose = asMap(parseYamlSubset(read('docker/compose.yaml')), 'compose file');
      for (const [name, secret] of Object.entries(asMap(compose.secrets, 'secrets'))) {
        const file = join(certsDir, withDefaults(asMap(secret, name).file as string));
        expect(existsSync(file), `${name}: ${relative(certsDir, file)}`).toBe(true);
      }
    });

    it.skipIf(!openssl)('documented chown covers the private secrets', () => {
      // make-certs.sh writes keys and tokens with mode 0600; the containers' uid must own those it reads.
      const compose = asMap(parseYamlSubset(read('docker/compose.yaml')), 'compose file');
      const files = Object.entries(asMap(compose.secrets, 'secrets')).map(([name, secret]) => withDefaults(asMap(secret, name).file as string));
      const ownerOnly = files.filter((file) => (statSync(join(certsDir, file)).mode & 0o077) === 0).map((file) => basename(file));
      expect(ownerOnly.length).toBeGreaterThan(0);
      const chown = documentedCommand(read('docker/compose.yaml'), 'sudo chown');
      expect(chown.slice(0, 3)).toEqual(['sudo', 'chown', '1000']);
      expect(chown.slice(3).sort()).toEqual(ownerOnly.sort());
    });
  });
});

/**
 * The words of a shell command quoted in a `#` comment: the first comment
 * line that starts with `start` (or has it after `&&`), up to the end of its
 * last continued line.
 */
function documentedCommand(text: string, start: string): string[] {
  const comments = text.split('\n').filter((line) => line.startsWith('#')).map((line) => line.slice(1).trim());
  const first = comments.findIndex((line) => line.startsWith(start) || line.includes(`&& ${start}`));
  if (first < 0) throw new Error(`no documented command containing ${start}`);
  const words: string[] = [];
  for (let i = first; i < comments.length; i++) {
    const line = i === first ? comments[i]!.slice(comments[i]!.indexOf(start)) : comments[i]!;
    const continued = line.endsWith('\\');
    words.push(...(continued ? line.slice(0, -1) : line).trim().split(/\s+/));
    if (!continued) break;
  }
  return words;
}

function commandOnPath(command: string): boolean {
  const path = process.env.PATH ?? '';
  return path.split(':').some((folder) => folder !== '' && existsSync(join(folder, command)));
}
