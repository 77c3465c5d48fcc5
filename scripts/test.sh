#!/usr/bin/env bash
# The project's checks: ruff, mypy, the docs build, then the whole pytest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export AIRFLOW_HOME="${AIRFLOW_HOME:-$(mktemp -d)}"
echo "==> ruff"
.venv/bin/ruff check airflow_provider_smsend tests dags_examples bench scripts
echo "==> ruff format"
.venv/bin/ruff format --check airflow_provider_smsend tests dags_examples bench scripts
echo "==> mypy"
.venv/bin/mypy
echo "==> docs"
bash scripts/docs.sh
echo "==> pytest"
.venv/bin/python -m pytest -p no:cacheprovider "$@"
