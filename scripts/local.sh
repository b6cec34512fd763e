#!/usr/bin/env bash
# One command from a fresh clone to a running service: installs what is missing (redis-server from Debian,
# the npm dependencies, and — only when no shipped model is present — the Python model package to export one),
# then starts gateway + perception worker + webhook worker + Redis with filesystem storage (`npm run dev`).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null; then
  echo "installing redis-server (Debian package)"
  apt-get update -qq && apt-get install -y -qq redis-server >/dev/null
fi
[ -d node_modules ] || npm ci --no-audit --no-fund

if [ -z "${MODEL_DIR:-}" ] && [ ! -f models/demo/manifest.json ] && [ ! -f .data/bundles/tiny-paper/manifest.json ]; then
  echo "no shipped model found: exporting an untrained tiny bundle to .data/bundles/tiny-paper"
  bash scripts/setup-python.sh
  .venv/bin/python -m mvp_lm.export --preset tiny --variant paper --seed 0 --out .data/bundles/tiny-paper
fi

exec npm run dev
