"""``python -m airflow_provider_smsend.sandbox``: run the sandbox gateway (see :mod:`.cli`)."""

from __future__ import annotations

import sys

from airflow_provider_smsend.sandbox.cli import main

sys.exit(main())
