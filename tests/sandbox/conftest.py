"""Fixtures of the sandbox tests: a requests session (the sandbox is the suite's, tests/conftest.py)."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import pytest
import requests

# The test modules import sandbox_helpers (beside this file) in any pytest import mode.
sys.path.insert(0, os.path.dirname(__file__))

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session
