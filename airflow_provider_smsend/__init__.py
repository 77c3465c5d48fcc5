"""Apache Airflow provider for the smSend SMS/MMS gateway."""

from __future__ import annotations

__version__ = "0.2.0"
