# syntax=docker/dockerfile:1
# hwopt-agent image for a GPU node. Build from the repository root:
#   docker build -f docker/agent.Dockerfile -t hwopt-agent .
# Run it with the NVIDIA Container Toolkit and a GPU reservation
# (docker/compose.yaml does both); the toolkit mounts the host's driver
# libraries and nvidia-smi into the container, so the image ships neither.

ARG NODE_IMAGE=node:20-bookworm-slim
ARG CUDA_IMAGE=nvidia/cuda:12.4.1-runtime-ubuntu22.04

# Build stage, the same as the coordinator's: `npm ci` runs the root
# `prepare` script (buf + ts-proto + prisma generate), whose generators are
# devDependencies, so everything is installed first and pruned afterwards.
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.base.json buf.yaml ./
COPY proto ./proto
COPY libs ./libs
COPY apps ./apps
COPY tools ./tools
COPY runners ./runners
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund
RUN npm prune --omit=dev --no-audit --no-fund

FROM ${CUDA_IMAGE}
# Python 3 for the visnet-pdb trial runner (runners/visnet-pdb/runner.py).
# Ubuntu 22.04 ships Python 3.10.
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 python3-pip ca-certificates \
  && rm -rf /var/lib/apt/lists/*
# PyTorch built for CUDA 12.4, torch_geometric (ViSNet) and torch_cluster,
# which ViSNet needs for its radius graph. torch_cluster has no CUDA wheels
# on PyPI; PyG's wheel index names the torch minor version with patch 0.
ARG TORCH_VERSION=2.4.1
ARG TORCH_CUDA=cu124
ARG PYG_WHEEL_TORCH=2.4.0
ARG TORCH_GEOMETRIC_VERSION=2.6.1
ARG TORCH_CLUSTER_VERSION=1.6.3
RUN pip3 install --no-cache-dir "torch==${TORCH_VERSION}" --index-url "https://download.pytorch.org/whl/${TORCH_CUDA}" \
  && pip3 install --no-cache-dir "torch_geometric==${TORCH_GEOMETRIC_VERSION}" \
  && pip3 install --no-cache-dir "torch_cluster==${TORCH_CLUSTER_VERSION}" \
     -f "https://data.pyg.org/whl/torch-${PYG_WHEEL_TORCH}+${TORCH_CUDA}.html" \
  && python3 -c "import torch, torch_geometric, torch_cluster"

# Node.js 20: the official binary from the node image runs on Ubuntu
# 22.04's glibc 2.35. npm is not needed at run time.
COPY --from=build /usr/local/bin/node /usr/local/bin/node
WORKDIR /app
# The code stays owned by root, so the agent process cannot modify it.
COPY --from=build /app /app

# The `utility` capability makes the toolkit mount nvidia-smi, which the
# agent reads the GPUs with; `compute` mounts the CUDA driver for PyTorch.
ENV NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility

# uid 1000 matches the coordinator image's user, so one certificate folder
# owned by uid 1000 serves both. The state folder holds the result outbox.
RUN useradd --uid 1000 --create-home --shell /usr/sbin/nologin hwopt \
  && mkdir -p /var/lib/hwopt-agent \
  && chown hwopt:hwopt /var/lib/hwopt-agent
USER hwopt
# NOTE: no HEALTHCHECK: the agent serves no port. It logs its reconnects,
# and the coordinator marks the node offline when its session ends.
ENTRYPOINT ["node", "apps/agent/bin/hwopt-agent.js"]
CMD ["run", "--state-dir", "/var/lib/hwopt-agent"]
