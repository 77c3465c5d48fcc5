"""Session-wide test setup: keep Airflow away from the developer's real AIRFLOW_HOME."""

from __future__ import annotations

import os
import tempfile

# Set before any test module imports Airflow (the hook tests do), so that Airflow's config,
# logs and database files land in a throw-away directory, never in a real installation.
os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="smsend-tests-airflow-home-")
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
