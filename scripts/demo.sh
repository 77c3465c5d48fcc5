#!/usr/bin/env bash
# The main job: every example DAG against the local sandbox gateway, fully offline, with SQLite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/python scripts/demo.py "$@"
