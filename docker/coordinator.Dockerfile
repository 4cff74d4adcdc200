# syntax=docker/dockerfile:1
# hwopt-coordinator image. Build from the repository root:
#   docker build -f docker/coordinator.Dockerfile -t hwopt-coordinator .
# docker/compose.yaml runs it with PostgreSQL and mutual TLS.

ARG NODE_IMAGE=node:20-bookworm-slim

# Build stage: the repository has no compile step (the bins run the
# TypeScript sources through tsx), but `npm ci` runs the root `prepare`
# script, which generates the gRPC stubs (buf + ts-proto) and the Prisma
# client. Those generators are devDependencies, so everything is installed
# first and the devDependencies are pruned afterwards.
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.base.json buf.yaml ./
COPY proto ./proto
COPY libs ./libs
COPY apps ./apps
COPY tools ./tools
COPY runners ./runners
# Optional dependencies stay: buf, esbuild (used by tsx) and the embedded
# PostgreSQL ship their native binaries in them.
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund
# tsx is a dependency of every app, so it survives the prune; the generated
# code lives under libs/*/src/generated and is not touched by it.
RUN npm prune --omit=dev --no-audit --no-fund
COPY docker/healthcheck.mjs ./docker/healthcheck.mjs

FROM ${NODE_IMAGE}
WORKDIR /app
# The code stays owned by root, so the server process cannot modify it.
COPY --from=build /app /app
# Data folder of the embedded PostgreSQL, used only when DATABASE_URL is
# unset. The node image's `node` user (uid 1000) runs the coordinator.
RUN mkdir -p /var/lib/hwopt && chown node:node /var/lib/hwopt
USER node
EXPOSE 50551
# Checks plaintext on loopback, which fits `--insecure`. With TLS the check
# needs certificates: docker/compose.yaml overrides it with them.
HEALTHCHECK --interval=15s --timeout=10s --start-period=60s --retries=3 \
  CMD ["node", "docker/healthcheck.mjs", "127.0.0.1:50551"]
ENTRYPOINT ["node", "apps/coordinator/bin/hwopt-coordinator.js"]
# Binding 0.0.0.0 is required in a container, and the coordinator rejects a
# non-loopback address without --tls-cert/--tls-key or --insecure, so the
# default command stops with a message that names those flags.
CMD ["--listen", "0.0.0.0:50551", "--data-dir", "/var/lib/hwopt/coordinator"]
