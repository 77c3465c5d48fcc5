#!/usr/bin/env bash
# Run every benchmark (bench/) and rewrite docs/benchmarks.md. Loopback only; about 5 minutes.
# Needs PostgreSQL on 127.0.0.1:5432 (user postgres, db test) and MariaDB on 127.0.0.1:3306
# (root, db test). Extra arguments go to `python -m bench` (e.g. --only bulk_send).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
# Child interpreters cache their bytecode outside the tree, as a deployed Airflow has its .pyc files.
unset PYTHONDONTWRITEBYTECODE
export PYTHONPYCACHEPREFIX="${TMPDIR:-/tmp}/smsend-bench-pycache"
exec .venv/bin/python -m bench "$@"
