#!/usr/bin/env bash
# Creates .venv with the model package and its test dependencies. torch is pinned to the CPU build that lies on
# this machine's disk (model/pyproject.toml); an unpinned torch would pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e "./model[test]" "moto[server]"
