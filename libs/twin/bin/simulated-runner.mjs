#!/usr/bin/env node
// Simulated trial runner for digital twins: speaks hwopt-trial/1 (see
// libs/trial/PROTOCOL.md) and computes its results from a twin's laws instead of a GPU.
// It starts once per trial, so it imports node: built-ins only; the laws are
// the few lines of libs/twin/src/twin.ts, repeated here.
//
// Environment:
//   HWOPT_TWIN             path of the twin JSON file (required)
//   HWOPT_TWIN_STATE_DIR   folder shared with the fake nvidia-smi; while a
//                          trial runs, <dir>/procs/<pid>.json lists this
//                          process and its GPU memory
//   HWOPT_TWIN_TIME_SCALE  real seconds slept per simulated second (default 0)
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const PROTOCOL = 'hwopt-trial/1';
const TWIN_FORMAT = 'hwopt-twin/1';
const MIB = 1024 * 1024;
/** Largest request line read from stdin, in bytes. */
const MAX_REQUEST_BYTES = 1024 * 1024;

const EXIT_OOM = 1;
const EXIT_RUNNER_ERROR = 2;

let procFile = null;

function emit(message) {
  process.stdout.write(`${JSON.stringify({ protocol: PROTOCOL, ...message })}\n`);
}

function removeProcFile() {
  if (procFile === null) return;
  try {
    rmSync(procFile, { force: true });
  } catch {
    // The fake nvidia-smi only reads the folder; a leftover file is all that can go wrong.
  }
  procFile = null;
}

/** Writes a fatal error line and exits; `stdout.write` of a short line to a pipe completes before exit. */
function fail(message, failureKind = 'runner_error') {
  process.stderr.write(`simulated-runner: ${message}\n`);
  emit({ type: 'error', message, failureKind });
  removeProcFile();
  process.exit(EXIT_RUNNER_ERROR);
}

process.on('exit', removeProcFile);
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) {
  process.on(signal, () => {
    removeProcFile();
    process.exit(128 + ({ SIGHUP: 1, SIGINT: 2, SIGTERM: 15 })[signal]);
  });
}

async function readRequest() {
  const chunks = [];
  let total = 0;
  for await (const chunk of process.stdin) {
    total += chunk.length;
    if (total > MAX_REQUEST_BYTES) fail(`request on stdin is larger than ${MAX_REQUEST_BYTES} bytes`);
    chunks.push(chunk);
    if (chunk.includes(10)) break;
  }
  const line = Buffer.concat(chunks).toString('utf8').split('\n')[0];
  if (line.trim() === '') fail('no request on stdin; write one hwopt-trial/1 request line as JSON');
  try {
    return JSON.parse(line);
  } catch (error) {
    return fail(`request on stdin is not valid JSON (${error.message})`);
  }
}

function finiteNumber(value, field, min = 0) {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) fail(`twin field ${field} must be a finite number >= ${min}`);
  return value;
}

function loadTwin(path) {
  if (!path) fail('HWOPT_TWIN is not set; set it to the path of a twin JSON file');
  let twin;
  try {
    twin = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    fail(`cannot read twin ${path}: ${error.message}`);
  }
  if (twin?.format !== TWIN_FORMAT) fail(`twin ${path} has format ${JSON.stringify(twin?.format)}, expected "${TWIN_FORMAT}"`);
  if (!Array.isArray(twin.architectures) || twin.architectures.length === 0) fail(`twin ${path} lists no architectures`);
  finiteNumber(twin.gpu?.memoryTotalMiB, 'gpu.memoryTotalMiB', 1);
  finiteNumber(twin.memory?.reservedMiB, 'memory.reservedMiB');
  finiteNumber(twin.trialOverheadSeconds, 'trialOverheadSeconds');
  return twin;
}

function findArchitecture(twin, architecture) {
  return twin.architectures.find((a) => a.layers === architecture?.layers && a.hiddenChannels === architecture?.hiddenChannels);
}

function roundUp(value, granularity) {
  return granularity > 0 ? Math.ceil(value / granularity) * granularity : value;
}

/** Applies the twin laws: tensor memory, device peak (CUDA context included) and step time. */
function applyLaws(twin, arch, batchSize) {
  const tensorsMiB = arch.fixedMiB + arch.perSampleMiB * batchSize + (arch.perSampleSquaredMiB ?? 0) * batchSize * batchSize;
  const reservedTensorsMiB = roundUp(tensorsMiB, twin.memory.granularityMiB ?? 0);
  const peakMiB = twin.memory.reservedMiB + reservedTensorsMiB;
  const stepSeconds = arch.stepSecondsFixed + arch.stepSecondsPerSample * batchSize;
  return { tensorsMiB, reservedTensorsMiB, peakMiB, stepSeconds, outOfMemory: peakMiB > twin.gpu.memoryTotalMiB };
}

function sleepSimulated(seconds, timeScale) {
  const ms = seconds * timeScale * 1000;
  return ms > 0 ? new Promise((resolve) => setTimeout(resolve, ms)) : Promise.resolve();
}

/** PyTorch's format_size: bytes, KiB, MiB or GiB with two decimals. */
function formatSize(bytes) {
  if (bytes < 1024) return `${Math.round(bytes)} bytes`;
  if (bytes < MIB) return `${(bytes / 1024).toFixed(2)} KiB`;
  if (bytes < 1024 * MIB) return `${(bytes / MIB).toFixed(2)} MiB`;
  return `${(bytes / (1024 * MIB)).toFixed(2)} GiB`;
}

function writeProcFile(stateDir, gpuUuid, usedMiB) {
  if (!stateDir) return;
  const dir = join(stateDir, 'procs');
  mkdirSync(dir, { recursive: true });
  procFile = join(dir, `${process.pid}.json`);
  // Write then rename, so the fake nvidia-smi never reads half a file.
  const temporary = `${procFile}.tmp`;
  writeFileSync(temporary, `${JSON.stringify({ pid: process.pid, gpuUuid, usedMiB })}\n`);
  renameSync(temporary, procFile);
}

function describe(twin, request) {
  if (!Array.isArray(request.architectures)) fail('describe request lacks an "architectures" array');
  if (request.workload !== undefined && request.workload !== twin.workload) {
    fail(`twin ${process.env.HWOPT_TWIN} models workload ${twin.workload}, not ${request.workload}`);
  }
  const parameterCounts = request.architectures.map((architecture) => {
    const arch = findArchitecture(twin, architecture);
    if (!arch) fail(`twin does not list architecture layers=${architecture?.layers} hiddenChannels=${architecture?.hiddenChannels}`);
    return arch.parameters;
  });
  emit({ type: 'describe', parameterCounts });
}

async function trial(twin, spec, timeScale) {
  const trialId = spec?.trialId;
  if (typeof trialId !== 'string') fail('trial request lacks spec.trialId');
  if (spec.workload !== twin.workload) fail(`twin ${process.env.HWOPT_TWIN} models workload ${twin.workload}, not ${spec.workload}`);
  const arch = findArchitecture(twin, spec.architecture);
  if (!arch) fail(`twin does not list architecture layers=${spec.architecture?.layers} hiddenChannels=${spec.architecture?.hiddenChannels}`);
  const { batchSize, iterations } = spec;
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) fail(`spec.batchSize must be a positive integer, got ${JSON.stringify(batchSize)}`);
  if (!Number.isSafeInteger(iterations) || iterations < 1) fail(`spec.iterations must be a positive integer, got ${JSON.stringify(iterations)}`);

  const law = applyLaws(twin, arch, batchSize);
  const totalMiB = twin.gpu.memoryTotalMiB;
  // A device never shows more than its capacity in use, so an out-of-memory trial reports the capacity.
  const deviceMiB = Math.min(law.peakMiB, totalMiB);
  writeProcFile(process.env.HWOPT_TWIN_STATE_DIR, spec.device?.uuid ?? '', deviceMiB);
  await sleepSimulated(twin.trialOverheadSeconds, timeScale);

  if (law.outOfMemory) {
    await sleepSimulated(law.stepSeconds, timeScale);
    // The failing allocation is the batch's activations, on top of the context and the model.
    const heldMiB = twin.memory.reservedMiB + arch.fixedMiB;
    const requestMiB = law.peakMiB - heldMiB;
    const freeMiB = Math.max(0, totalMiB - heldMiB);
    const message =
      `torch.OutOfMemoryError: CUDA out of memory. Tried to allocate ${formatSize(requestMiB * MIB)}. ` +
      `GPU 0 has a total capacity of ${formatSize(totalMiB * MIB)} of which ${formatSize(freeMiB * MIB)} is free. ` +
      `Including non-PyTorch memory, this process has ${formatSize(heldMiB * MIB)} memory in use. ` +
      `Of the allocated memory ${formatSize(arch.fixedMiB * MIB)} is allocated by PyTorch, and 0 bytes is reserved by PyTorch but unallocated. ` +
      'If reserved but unallocated memory is large try setting PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation.';
    process.stderr.write(`Traceback (most recent call last):\n  File "simulated-runner.mjs", line 1, in step\n${message}\n`);
    emit({
      type: 'result',
      trialId,
      outcome: 'oom',
      message,
      parameterCount: arch.parameters,
      frameworkPeakAllocatedBytes: Math.round(arch.fixedMiB * MIB),
      frameworkPeakReservedBytes: Math.round(roundUp(arch.fixedMiB, twin.memory.granularityMiB ?? 0) * MIB),
      devicePeakMiB: deviceMiB,
      gpuSeconds: twin.trialOverheadSeconds + law.stepSeconds,
    });
    removeProcFile();
    process.exitCode = EXIT_OOM;
    return;
  }

  for (let iteration = 1; iteration <= iterations; iteration++) {
    await sleepSimulated(law.stepSeconds, timeScale);
    emit({ type: 'progress', trialId, iteration, iterations, stepSeconds: law.stepSeconds });
  }
  const s = law.stepSeconds;
  emit({
    type: 'result',
    trialId,
    outcome: 'ok',
    parameterCount: arch.parameters,
    frameworkPeakAllocatedBytes: Math.round(law.tensorsMiB * MIB),
    frameworkPeakReservedBytes: Math.round(law.reservedTensorsMiB * MIB),
    stepSeconds: { mean: s, p50: s, min: s, max: s, count: iterations },
    devicePeakMiB: law.peakMiB,
    gpuSeconds: twin.trialOverheadSeconds + iterations * s,
  });
  removeProcFile();
}

const request = await readRequest();
if (request?.protocol !== PROTOCOL) fail(`request protocol is ${JSON.stringify(request?.protocol)}, this runner speaks "${PROTOCOL}"`);
const twin = loadTwin(process.env.HWOPT_TWIN);
const timeScale = Number(process.env.HWOPT_TWIN_TIME_SCALE ?? '0');
if (!Number.isFinite(timeScale) || timeScale < 0) fail(`HWOPT_TWIN_TIME_SCALE must be a number >= 0, got ${JSON.stringify(process.env.HWOPT_TWIN_TIME_SCALE)}`);

if (request.request === 'describe') describe(twin, request);
else if (request.request === 'trial') await trial(twin, request.spec, timeScale);
else fail(`unknown request ${JSON.stringify(request.request)}; expected "trial" or "describe"`);
