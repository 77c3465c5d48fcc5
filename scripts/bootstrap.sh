#!/usr/bin/env bash
# Create ./.venv (Python 3.11) if needed and install the provider with its test extras.
# Idempotent and quick when everything is already installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then PY=$candidate; break; fi
  done
fi
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv with $PY"
  "$PY" -m venv .venv
fi
if [ ! -x .venv/bin/uv ]; then
  echo "==> installing uv into .venv"
  .venv/bin/python -m pip install --quiet uv
fi
echo "==> installing airflow-provider-smsend and its test dependencies"
.venv/bin/uv pip install --quiet --python .venv/bin/python -e ".[test]"
