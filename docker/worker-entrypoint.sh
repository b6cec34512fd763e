#!/bin/sh
# Perception worker entrypoint (CPU and GPU images). The model bundle is either mounted at MODEL_DIR
# (a volume, read-only is fine) or copied from MODEL_S3_URI into MODEL_DIR first. Then the command runs
# (default: the perception worker) as PID 1's replacement, so it receives SIGTERM directly and drains.
set -eu
: "${MODEL_DIR:?MODEL_DIR must name the model bundle directory}"
if [ -n "${MODEL_S3_URI:-}" ]; then
  node "$(dirname "$0")/fetch-bundle.mjs" "$MODEL_S3_URI" "$MODEL_DIR"
elif [ ! -f "$MODEL_DIR/manifest.json" ]; then
  echo "worker-entrypoint: no bundle at $MODEL_DIR (mount one there or set MODEL_S3_URI)" >&2
  exit 1
fi
exec "$@"
