# syntax=docker/dockerfile:1
# CPU perception worker: workers/perception/main.ts with ONNX Runtime's CPU provider (bundled in the npm
# package). The model bundle is mounted at MODEL_DIR or copied from MODEL_S3_URI (docker/worker-entrypoint.sh).
# Build from the repository root:  docker build -f docker/worker-cpu.Dockerfile -t mvp-lm-worker-cpu .
#
# Pinned to an exact version tag, no digest (not readable from a registry here); see gateway.Dockerfile.
ARG NODE_IMAGE=node:20.20.2-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY docker/tsconfig.build.json docker/
COPY contracts contracts
COPY lib lib
COPY src src
COPY workers workers
RUN npx tsc -p docker/tsconfig.build.json

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
# .npmrc skips onnxruntime-node's download of CUDA binaries; the CPU library ships inside the package.
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM ${NODE_IMAGE}
ENV NODE_ENV=production ORT_PROVIDER=cpu MODEL_DIR=/models/current
WORKDIR /app
COPY --from=deps /app/node_modules node_modules
COPY --from=build /app/dist dist
COPY package.json ./
# The pipeline validates manifest.json against this schema (workers/pipeline/bundle.ts looks for it above dist/).
COPY model/manifest.schema.json model/
# The Redis scripts (lib/redis/lua.ts finds them above dist/).
COPY lib/redis/lua lib/redis/lua
COPY docker/healthcheck.mjs docker/fetch-bundle.mjs docker/worker-entrypoint.sh docker/
RUN mkdir -p /models && chown node:node /models
USER node
VOLUME ["/models"]
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 CMD ["node", "docker/healthcheck.mjs", "worker"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/app/docker/worker-entrypoint.sh"]
CMD ["node", "dist/workers/perception/main.js"]
