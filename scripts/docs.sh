#!/usr/bin/env bash
# Build the docs site (docs/ -> docs/_build/html) with Sphinx and MyST: offline, warnings as
# errors (-W), every reference inside the package checked (-n); all warnings shown (--keep-going).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
# Autodoc imports the Airflow layer: give Airflow a throw-away home (no config or database kept).
AIRFLOW_HOME="$(mktemp -d)"
export AIRFLOW_HOME
trap 'rm -rf "$AIRFLOW_HOME"' EXIT
# -E: a fresh environment every time, so a warning of a page not re-read is never lost.
.venv/bin/sphinx-build -W -n --keep-going -E -q -b html docs docs/_build/html "$@"
echo "==> docs built: docs/_build/html/index.html"
