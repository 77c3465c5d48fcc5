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
# mysqlclient (apache-airflow-providers-mysql) builds against the MariaDB C headers. On a fresh
# Debian/Ubuntu machine install them once, quietly, if they are missing and we may (root + apt-get).
if ! command -v mariadb_config >/dev/null 2>&1 && ! command -v mysql_config >/dev/null 2>&1 \
    && ! { command -v pkg-config >/dev/null 2>&1 && { pkg-config --exists libmariadb || pkg-config --exists mysqlclient; }; }; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing the MariaDB client headers (libmariadb-dev, pkg-config) for mysqlclient"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libmariadb-dev pkg-config >/dev/null \
      || { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libmariadb-dev pkg-config >/dev/null; }
  else
    echo "==> warning: MariaDB client headers missing; install libmariadb-dev and pkg-config (mysqlclient needs them)" >&2
  fi
fi
echo "==> installing airflow-provider-smsend and its test dependencies"
.venv/bin/uv pip install --quiet --python .venv/bin/python -e ".[test]"
