#!/usr/bin/env bash
# The project's checks: ruff, mypy, the docs build, the whole pytest suite (newest versions), then
# the suite on the lowest supported versions (scripts/test_lowest.sh).
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
echo "==> pytest on the lowest supported versions (Airflow 3.2.0, every dependency at its lower bound)"
bash scripts/test_lowest.sh "$@"
