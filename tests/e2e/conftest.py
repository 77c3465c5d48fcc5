"""Fixtures of the end-to-end tests: a metadata template migrated once, one deployment per test."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import pytest

# The test modules import e2e_deployment (beside this file) in any pytest import mode.
sys.path.insert(0, os.path.dirname(__file__))

from e2e_deployment import Deployment, create_database, drop_database, migrate, require_services  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

#: Set on a test item whose call phase failed, so its deployment prints every component's log.
FAILED = pytest.StashKey[bool]()


@pytest.fixture(scope="session")
def metadata_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PostgreSQL database with Airflow's schema, migrated once; each deployment clones it."""
    require_services("postgres")
    name = f"airflow_e2e_{os.getpid()}_template"
    create_database(name)
    try:
        migrate(tmp_path_factory.mktemp("airflow-migrate"), name)
        yield name
    finally:
        drop_database(name)


@pytest.fixture
def deployment(
    metadata_template: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Deployment]]:
    """Start a deployment: ``deployment(executor, workers=0)``; everything is stopped and dropped after."""
    started: list[Deployment] = []

    def start(executor: str, workers: int = 0) -> Deployment:
        name = executor.lower().replace("executor", "")
        instance = Deployment(
            tmp_path_factory.mktemp(f"e2e-{name}"),
            template_db=metadata_template,
            executor=executor,
            name=name,
        )
        started.append(instance)
        instance.start(workers=workers)
        return instance

    yield start
    for instance in started:
        if request.node.stash.get(FAILED, False):
            print(instance.report())
        instance.stop()
        print(
            f"{instance.executor} deployment timings (s): "
            + ", ".join(f"{what} {seconds:.0f}" for what, seconds in instance.timings.items())
        )


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    report = yield
    if report.when == "call" and report.failed:
        item.stash[FAILED] = True
    return report
