#!/usr/bin/env python3
"""hwopt-trial/1 runner for the visnet-pdb workload.

Trains torch_geometric's ViSNet on a synthetic molecular graph standing in
for the largest sample of the PDB dataset, and reports step times and
PyTorch's peak memory. The protocol is described in libs/trial/PROTOCOL.md:
one JSON request line on stdin, JSON lines on stdout.

Environment:
    HWOPT_VISNET_ATOMS  atoms per synthetic sample (default 300)
    HWOPT_VISNET_SEED   random seed of the synthetic graph (default 0)

Exit codes: 0 success, 1 CUDA out of memory, 2 invalid request,
3 missing dependency, 4 CUDA unavailable, 5 other failure.
"""

import json
import math
import os
import sys
import time
import traceback

PROTOCOL = "hwopt-trial/1"
WORKLOAD = "visnet-pdb"

EXIT_OOM = 1
EXIT_BAD_REQUEST = 2
EXIT_MISSING_DEPENDENCY = 3
EXIT_NO_CUDA = 4
EXIT_FAILURE = 5

# ViSNet splits hidden channels across its attention heads (torch_geometric's default).
NUM_HEADS = 8
DEFAULT_ATOMS = 300
# Atoms per cubic angstrom of the synthetic sample, about the heavy-atom density of a folded protein.
ATOM_DENSITY_PER_A3 = 0.05
# Elements of the synthetic sample: H, C, N, O, S.
ELEMENTS = (1, 6, 7, 8, 16)
MAX_REQUEST_BYTES = 1024 * 1024


def emit(message):
    sys.stdout.write(json.dumps({"protocol": PROTOCOL, **message}) + "\n")
    sys.stdout.flush()


def fail(message, exit_code, failure_kind="runner_error"):
    """Writes a fatal error line (and the message to stderr) and exits."""
    sys.stderr.write(f"visnet-pdb runner: {message}\n")
    emit({"type": "error", "message": message, "failureKind": failure_kind})
    sys.exit(exit_code)


def read_request():
    line = sys.stdin.readline(MAX_REQUEST_BYTES)
    if not line.strip():
        fail("no request on stdin; write one hwopt-trial/1 request line as JSON", EXIT_BAD_REQUEST)
    try:
        request = json.loads(line)
    except json.JSONDecodeError as error:
        fail(f"request on stdin is not valid JSON ({error})", EXIT_BAD_REQUEST)
    if not isinstance(request, dict) or request.get("protocol") != PROTOCOL:
        found = request.get("protocol") if isinstance(request, dict) else None
        fail(f"request protocol is {json.dumps(found)}, this runner speaks \"{PROTOCOL}\"", EXIT_BAD_REQUEST)
    return request


def positive_int(value, field):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        fail(f"{field} must be a positive integer, got {json.dumps(value)}", EXIT_BAD_REQUEST)
    return value


def read_architecture(architecture, field):
    if not isinstance(architecture, dict):
        fail(f"{field} must be an object with layers and hiddenChannels", EXIT_BAD_REQUEST)
    layers = positive_int(architecture.get("layers"), f"{field}.layers")
    hidden = positive_int(architecture.get("hiddenChannels"), f"{field}.hiddenChannels")
    if hidden % NUM_HEADS != 0:
        fail(f"{field}.hiddenChannels must be a multiple of {NUM_HEADS} (ViSNet attention heads), got {hidden}", EXIT_BAD_REQUEST)
    return layers, hidden


def env_int(name, default, minimum):
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        fail(f"{name} must be an integer >= {minimum}, got {json.dumps(raw)}", EXIT_BAD_REQUEST)
    return value


def import_torch():
    """Imports torch and torch_geometric, or fails with an error line naming what is missing."""
    try:
        import torch
        from torch_geometric.nn.models import ViSNet
    except ImportError as error:
        fail(
            f"PyTorch and torch_geometric are required in {sys.executable} ({error}); "
            "install torch, torch_geometric and torch_cluster in the environment that starts this runner",
            EXIT_MISSING_DEPENDENCY,
        )
    return torch, ViSNet


def build_model(ViSNet, layers, hidden):
    return ViSNet(hidden_channels=hidden, num_layers=layers, num_heads=NUM_HEADS)


def count_trainable_parameters(model):
    return sum(parameter.numel() for parameter in model.parameters() if parameter.requires_grad)


def describe(request):
    if request.get("workload") != WORKLOAD:
        fail(f"this runner serves workload {WORKLOAD}, not {json.dumps(request.get('workload'))}", EXIT_BAD_REQUEST)
    architectures = request.get("architectures")
    if not isinstance(architectures, list):
        fail("describe request lacks an \"architectures\" array", EXIT_BAD_REQUEST)
    shapes = [read_architecture(a, f"architectures[{i}]") for i, a in enumerate(architectures)]
    torch, ViSNet = import_torch()
    # Modules are built on the CPU (the agent also hides GPUs from describe requests).
    counts = [count_trainable_parameters(build_model(ViSNet, layers, hidden)) for layers, hidden in shapes]
    emit({"type": "describe", "parameterCounts": counts})


def synthetic_batch(torch, atoms, batch_size, seed, device):
    """Random atoms in a cube of protein-like density, repeated batch_size times."""
    generator = torch.Generator().manual_seed(seed)
    side = (atoms / ATOM_DENSITY_PER_A3) ** (1.0 / 3.0)
    pos = torch.rand(atoms, 3, generator=generator) * side
    elements = torch.tensor(ELEMENTS, dtype=torch.long)
    z = elements[torch.randint(len(ELEMENTS), (atoms,), generator=generator)]
    batch = torch.arange(batch_size).repeat_interleave(atoms)
    return z.repeat(batch_size).to(device), pos.repeat(batch_size, 1).to(device), batch.to(device)


def is_out_of_memory(torch, error):
    oom_type = getattr(torch.cuda, "OutOfMemoryError", None)
    if oom_type is not None and isinstance(error, oom_type):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error)


def error_name(error):
    """Qualified exception name as Python prints it in a traceback, such as torch.OutOfMemoryError."""
    module = type(error).__module__
    return type(error).__name__ if module == "builtins" else f"{module}.{type(error).__name__}"


def step_statistics(samples):
    ordered = sorted(samples)
    middle = len(ordered) // 2
    p50 = ordered[middle] if len(ordered) % 2 == 1 else (ordered[middle - 1] + ordered[middle]) / 2
    return {"mean": sum(ordered) / len(ordered), "p50": p50, "min": ordered[0], "max": ordered[-1], "count": len(ordered)}


def trial(request):
    spec = request.get("spec")
    if not isinstance(spec, dict):
        fail("trial request lacks a \"spec\" object", EXIT_BAD_REQUEST)
    trial_id = spec.get("trialId")
    if not isinstance(trial_id, str) or not trial_id:
        fail("spec.trialId must be a non-empty string", EXIT_BAD_REQUEST)
    if spec.get("workload") != WORKLOAD:
        fail(f"this runner serves workload {WORKLOAD}, not {json.dumps(spec.get('workload'))}", EXIT_BAD_REQUEST)
    layers, hidden = read_architecture(spec.get("architecture"), "spec.architecture")
    batch_size = positive_int(spec.get("batchSize"), "spec.batchSize")
    iterations = positive_int(spec.get("iterations"), "spec.iterations")
    atoms = env_int("HWOPT_VISNET_ATOMS", DEFAULT_ATOMS, 1)
    seed = env_int("HWOPT_VISNET_SEED", 0, 0)

    torch, ViSNet = import_torch()
    if torch.version.cuda is None:
        fail(f"torch {torch.__version__} is a CPU-only build; install a CUDA build of PyTorch", EXIT_NO_CUDA)
    if not torch.cuda.is_available():
        fail(
            f"CUDA is not available to torch {torch.__version__} (CUDA {torch.version.cuda}); "
            f"check the NVIDIA driver (nvidia-smi) and CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', '')!r}",
            EXIT_NO_CUDA,
            "driver_missing",
        )
    # The agent sets CUDA_VISIBLE_DEVICES to the trial's GPU, so it is device 0 here.
    device = torch.device("cuda", 0)
    torch.cuda.reset_peak_memory_stats(device)

    parameter_count = None
    step_samples = []
    try:
        model = build_model(ViSNet, layers, hidden).to(device)
        parameter_count = count_trainable_parameters(model)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
        z, pos, batch = synthetic_batch(torch, atoms, batch_size, seed, device)
        target = torch.zeros(batch_size, 1, device=device)
        model.train()

        torch.cuda.synchronize(device)
        for iteration in range(1, iterations + 1):
            started = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            energy, _ = model(z, pos, batch)
            loss = torch.nn.functional.mse_loss(energy, target)
            loss.backward()
            optimizer.step()
            # Each step is timed to the end of its kernels, so per-step times are exact.
            torch.cuda.synchronize(device)
            step_seconds = time.perf_counter() - started
            if not math.isfinite(loss.item()):
                raise FloatingPointError(f"loss is {loss.item()} at iteration {iteration}")
            step_samples.append(step_seconds)
            emit({"type": "progress", "trialId": trial_id, "iteration": iteration, "iterations": iterations, "stepSeconds": step_seconds})
    except Exception as error:  # noqa: BLE001 - every failure is reported as a result line
        traceback.print_exc(file=sys.stderr)
        sys.stderr.flush()
        out_of_memory = is_out_of_memory(torch, error)
        emit({
            "type": "result",
            "trialId": trial_id,
            "outcome": "oom" if out_of_memory else "failed",
            "message": f"{error_name(error)}: {error}"[:8000],
            "parameterCount": parameter_count,
            "frameworkPeakAllocatedBytes": torch.cuda.max_memory_allocated(device),
            "frameworkPeakReservedBytes": torch.cuda.max_memory_reserved(device),
        })
        sys.exit(EXIT_OOM if out_of_memory else EXIT_FAILURE)

    emit({
        "type": "result",
        "trialId": trial_id,
        "outcome": "ok",
        "parameterCount": parameter_count,
        "frameworkPeakAllocatedBytes": torch.cuda.max_memory_allocated(device),
        "frameworkPeakReservedBytes": torch.cuda.max_memory_reserved(device),
        "stepSeconds": step_statistics(step_samples),
    })


def main():
    request = read_request()
    kind = request.get("request")
    if kind == "describe":
        describe(request)
    elif kind == "trial":
        trial(request)
    else:
        fail(f"unknown request {json.dumps(kind)}; expected \"trial\" or \"describe\"", EXIT_BAD_REQUEST)


if __name__ == "__main__":
    main()
