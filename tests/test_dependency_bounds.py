"""The declared dependency bounds are real: every requirement has a lower bound, and the lowest run
installs each direct dependency at exactly that bound.

``scripts/test_lowest.sh`` installs ``.venv-lowest`` with uv's lowest-direct resolution and runs the
suite there with ``SMSEND_LOWEST=1``: a lower bound that resolves higher (because another
dependency needs more) would be declared but never tested, and fails here.
The Airflow floor (3.2.0) is the first Airflow whose ``ProvidersManager`` reads the ``conn-fields``
of ``get_provider_info()``, the connection form's only definition: on 3.1 the form would have no
extra field. ``tests/test_provider_info.py`` checks the form is read, on both Airflow versions.
"""

from __future__ import annotations

import importlib.metadata
import os
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
AIRFLOW_FLOOR = Version("3.2.0")
LOWEST = os.environ.get("SMSEND_LOWEST") == "1"


def _project() -> dict:
    return tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]


def _requirements(*groups: str) -> list[Requirement]:
    project = _project()
    found = [Requirement(r) for r in project["dependencies"]]
    for group in groups or tuple(project["optional-dependencies"]):
        found += [Requirement(r) for r in project["optional-dependencies"][group]]
    return found


def floor(requirement: Requirement) -> Version | None:
    """Return the lowest version ``requirement`` allows through ``>=`` or ``==``, or None."""
    bounds = [Version(s.version) for s in requirement.specifier if s.operator in (">=", "==")]
    return max(bounds) if bounds else None


def test_floor_of_a_requirement():
    assert floor(Requirement("celery[redis]>=5.5,<5.7")) == Version("5.5")
    assert floor(Requirement("apache-airflow>=3.2.0,<4")) == Version("3.2.0")
    assert floor(Requirement("types-requests")) is None
    assert floor(Requirement("pandas<3")) is None


def test_every_requirement_has_a_lower_bound():
    unbounded = [str(r) for r in _requirements() if floor(r) is None]
    assert not unbounded, f"requirements without a lower bound (lowest-direct would pick any): {unbounded}"


def test_a_package_has_one_floor_in_every_extra():
    floors: dict[str, set[Version | None]] = {}
    for requirement in _requirements():
        floors.setdefault(requirement.name, set()).add(floor(requirement))
    assert {name: found for name, found in floors.items() if len(found) > 1} == {}


def test_airflow_floor_is_the_first_that_reads_the_connection_form():
    (airflow,) = [r for r in _requirements() if r.name == "apache-airflow"]
    assert floor(airflow) == AIRFLOW_FLOOR
    assert not airflow.specifier.contains("4.0.0")


def test_the_installed_airflow_is_supported():
    (airflow,) = [r for r in _requirements() if r.name == "apache-airflow"]
    installed = Version(importlib.metadata.version("apache-airflow"))
    assert airflow.specifier.contains(installed), (installed, str(airflow.specifier))


@pytest.mark.skipif(not LOWEST, reason="the lowest-direct environment only (scripts/test_lowest.sh)")
def test_lowest_run_installs_every_direct_dependency_at_its_floor():
    wrong = {}
    for requirement in _requirements("test"):
        installed = Version(importlib.metadata.version(requirement.name))
        if installed != floor(requirement):
            wrong[str(requirement)] = str(installed)
    assert not wrong, f"installed above the declared lower bound (raise the bound to what is tested): {wrong}"
