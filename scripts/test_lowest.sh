#!/usr/bin/env bash
# The test suite on the lowest supported versions: ./.venv-lowest holds the provider with every
# direct dependency (runtime and test extras) at its declared lower bound, Airflow at its floor
# (apache-airflow>=3.2.0 in pyproject.toml resolves to 3.2.0), through uv's lowest-direct
# resolution; the dependencies of those dependencies are the newest they allow.
# tests/test_dependency_bounds.py then asserts that each direct dependency is installed at exactly
# its floor, so a lower bound that cannot be installed with the others, or that resolves higher,
# fails the run instead of passing untested.
# Run by scripts/test.sh after the main suite (which runs on the newest versions, e2e included).
# Arguments are passed to pytest. The e2e deployments (tests/e2e) run on the newest Airflow only:
# they take about half of the main suite's time, and the CI budget cannot run them twice.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/uv ] || bash scripts/bootstrap.sh
UV=.venv/bin/uv
VENV=.venv-lowest
if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating $VENV"
  "$UV" venv --quiet --python .venv/bin/python "$VENV"
fi
echo "==> resolving the lower bounds (uv pip compile --resolution lowest-direct)"
echo '-e .[test]' >"$VENV/requirements.in"
# One constraint on a dependency of Airflow (a deployment of 3.2 needs it too; Airflow's install
# docs use a constraints file): apache-airflow-core 3.2.x allows any fastapi >= 0.129, and with
# fastapi 0.137+ its execution API fails to build (pydantic: "Model 'TITerminalStatePayload' needs
# a discriminator field"), so no task runs; Airflow 3.3 declares fastapi<0.137 itself.
echo 'fastapi<0.137' >"$VENV/constraints.txt"
"$UV" pip compile --quiet --python "$VENV/bin/python" --resolution lowest-direct \
  -c "$VENV/constraints.txt" "$VENV/requirements.in" -o "$VENV/requirements.txt"
echo "==> installing them into $VENV (uv pip sync: exactly these, nothing left over)"
"$UV" pip sync --quiet --python "$VENV/bin/python" "$VENV/requirements.txt"
"$VENV/bin/python" -c 'import airflow; print("==> pytest on Airflow", airflow.__version__, "(lowest)")'
# A metadata database of its own: Airflow 3.2's schema is not the newest one's.
AIRFLOW_HOME="$(mktemp -d)"
export AIRFLOW_HOME SMSEND_LOWEST=1
# Left out here, besides tests/e2e: the once-only engine's kill-and-retry tests
# (test_inflight_ambiguity.py, test_crash_retry.py, test_twin_tries.py: about 8 minutes of processes
# killed at chosen moments and retried, the slowest of the suite after the e2e). They drive the
# provider's own code the same way on every version; the ledger's SQL under them is tested here by
# tests/sql and tests/client/test_once_only.py on the lowest drivers, and they all run on the newest.
"$VENV/bin/python" -m pytest -p no:cacheprovider -q --ignore=tests/e2e \
  --ignore=tests/reliability/test_inflight_ambiguity.py --ignore=tests/reliability/test_crash_retry.py \
  --ignore=tests/reliability/test_twin_tries.py "$@"
