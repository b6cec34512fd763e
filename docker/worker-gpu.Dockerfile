# syntax=docker/dockerfile:1
# GPU perception worker: ONNX Runtime's CUDA provider on an NVIDIA CUDA 12 + cuDNN 9 runtime base.
# onnxruntime-node's install script fetches the CUDA provider libraries when ONNXRUNTIME_NODE_INSTALL=cuda12
# (this needs network access at build time; the repository's .npmrc skips it everywhere else).
# The worker asks for CUDA explicitly (ORT_PROVIDER=cuda); if the provider cannot load it falls back to CPU
# and says so in its log and heartbeat (provider "cpu"), which the fleet's alarms and /readyz show.
# Build from the repository root:  docker build -f docker/worker-gpu.Dockerfile -t mvp-lm-worker-gpu .
#
# Pinned to exact version tags, no digests (not readable from a registry here); see gateway.Dockerfile.
ARG NODE_IMAGE=node:20.20.2-bookworm-slim
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu22.04

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
RUN npm ci --omit=dev --no-audit --no-fund \
 && ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js \
 && test -f node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so \
 && npm cache clean --force

FROM ${NODE_IMAGE} AS node

FROM ${CUDA_IMAGE}
# Node's official linux-x64 build (glibc >= 2.28) runs on Ubuntu 22.04 as it is.
COPY --from=node /usr/local/bin/node /usr/local/bin/node
ENV NODE_ENV=production ORT_PROVIDER=cuda MODEL_DIR=/models/current \
    NVIDIA_VISIBLE_DEVICES=all NVIDIA_DRIVER_CAPABILITIES=compute,utility
RUN groupadd --gid 10001 app && useradd --uid 10001 --gid app --no-create-home --shell /usr/sbin/nologin app \
 && mkdir -p /models && chown app:app /models
WORKDIR /app
COPY --from=deps /app/node_modules node_modules
COPY --from=build /app/dist dist
COPY package.json ./
COPY model/manifest.schema.json model/
# The Redis scripts (lib/redis/lua.ts finds them above dist/).
COPY lib/redis/lua lib/redis/lua
COPY docker/healthcheck.mjs docker/fetch-bundle.mjs docker/worker-entrypoint.sh docker/
USER app
VOLUME ["/models"]
HEALTHCHECK --interval=15s --timeout=5s --start-period=180s --retries=3 CMD ["node", "docker/healthcheck.mjs", "worker"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/app/docker/worker-entrypoint.sh"]
CMD ["node", "dist/workers/perception/main.js"]
