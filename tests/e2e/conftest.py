"""Fixtures of the end-to-end tests: a metadata template migrated once, one deployment per test,
and one CeleryExecutor deployment shared by the tests that ask for ``celery_deployment``."""

from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING

import pytest

# The test modules import e2e_deployment (beside this file) in any pytest import mode.
sys.path.insert(0, os.path.dirname(__file__))

from e2e_deployment import (  # noqa: E402
    CELERY_WORKERS,
    Deployment,
    create_database,
    drop_database,
    migrate,
    require_services,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

#: Set on a test item whose call phase failed, so its deployment prints every component's log.
FAILED = pytest.StashKey[bool]()

#: Settings of the shared CeleryExecutor deployment that the campaign-across-workers test needs:
#: a task whose worker was killed is failed (then retried) 20 s after its last heartbeat rather
#: than 300, and the sharded example retries a shard 2 s after (instead of 60).
CELERY_SETTINGS = {
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
    "SMSEND_EXAMPLE_RETRY_SECONDS": "2",
}
#: The shared CeleryExecutor deployment while it runs, and whether a test using it failed.
_SHARED: list[Deployment] = []
_SHARED_FAILED: list[bool] = []


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


@pytest.fixture(scope="session")
def celery_deployment(
    metadata_template: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """A CeleryExecutor deployment with the workers of CELERY_WORKERS, each ready, shared by every
    test that asks for it and stopped right after the last of them. A test that kills a worker
    starts it again (:meth:`Deployment.restart_worker`) before it ends."""
    require_services("redis")
    instance = Deployment(
        tmp_path_factory.mktemp("e2e-celery-shared"),
        template_db=metadata_template,
        executor="CeleryExecutor",
        name="celeryshared",
    )
    instance.extra_env.update(CELERY_SETTINGS)
    _SHARED.append(instance)
    try:
        instance.start(workers=len(CELERY_WORKERS))
        for worker in CELERY_WORKERS:  # each worker connected to the broker and consumes the queue
            instance.wait_for(f"{worker} to be ready", lambda w=worker: instance.worker_ready(w), 120)
        instance.timings["workers ready"] = time.monotonic() - instance.started_at
        yield instance
    finally:
        _stop_shared()


def _stop_shared() -> None:
    while _SHARED:
        instance = _SHARED.pop()
        if _SHARED_FAILED:
            print(instance.report())
        instance.stop()
        print(
            f"shared {instance.executor} deployment timings (s): "
            + ", ".join(f"{what} {seconds:.0f}" for what, seconds in instance.timings.items())
        )


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Stop the shared Celery deployment as soon as no test left to run needs it."""
    if _SHARED and (nextitem is None or "celery_deployment" not in getattr(nextitem, "fixturenames", ())):
        _stop_shared()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    report = yield
    if report.when == "call" and report.failed:
        item.stash[FAILED] = True
        if "celery_deployment" in getattr(item, "fixturenames", ()):
            _SHARED_FAILED.append(True)
    return report
