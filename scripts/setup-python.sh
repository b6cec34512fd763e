#!/usr/bin/env bash
# Creates .venv with the model package and its test dependencies. torch is pinned to the CPU build that lies on
# this machine's disk (model/pyproject.toml); an unpinned torch would pull a multi-GB CUDA build.
# Also the S3-protocol test server (moto) and schemathesis, which test/gateway/schemathesis.test.ts runs against
# the gateway; pinned, since its CLI flags change between releases.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e "./model[test]" "moto[server]" "schemathesis==4.32.5"
