"""``python -m airflow_provider_smsend.sandbox``: run the sandbox gateway (see :mod:`.cli`)."""

from __future__ import annotations

import sys

from airflow_provider_smsend.sandbox.cli import main

if __name__ == "__main__":
    sys.exit(main())
