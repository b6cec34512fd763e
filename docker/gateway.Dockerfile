# syntax=docker/dockerfile:1
# Gateway image: the Hono app under @hono/node-server (src/server.ts), also the webhook sender
# (workers/webhooks/main.ts), which needs neither ONNX Runtime nor a model.
# Build from the repository root:  docker build -f docker/gateway.Dockerfile -t mvp-lm-gateway .
#
# Base images are pinned to an exact version tag. No digest is given: it could not be read from a registry
# where these files were written; pin one with `docker buildx imagetools inspect node:20.20.2-bookworm-slim`.
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
# Production dependencies only; the gateway never loads ONNX Runtime, so its native library is dropped.
RUN npm ci --omit=dev --no-audit --no-fund && rm -rf node_modules/onnxruntime-node && npm cache clean --force

FROM ${NODE_IMAGE}
ENV NODE_ENV=production PORT=8080 HOST=0.0.0.0
WORKDIR /app
COPY --from=deps --chown=root:root /app/node_modules node_modules
COPY --from=build --chown=root:root /app/dist dist
COPY package.json ./
# The Redis scripts (lib/redis/lua.ts finds them above dist/).
COPY lib/redis/lua lib/redis/lua
COPY docker/healthcheck.mjs docker/ensure-bucket.mjs docker/
# The official image's unprivileged user (uid 1000); the code it runs is owned by root and read-only to it.
USER node
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 CMD ["node", "docker/healthcheck.mjs", "gateway"]
STOPSIGNAL SIGTERM
CMD ["node", "dist/src/server.js"]
