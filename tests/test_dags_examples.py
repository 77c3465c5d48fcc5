"""The example DAGs users copy: each imports with no import error and no warning, and is documented."""

from __future__ import annotations

import ast
import re
import warnings
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "dags_examples"
EXPECTED = {
    "smsend_campaign",
    "smsend_campaign_sharded",
    "smsend_consent_campaign",
    "smsend_mapped_reminders",
    "smsend_mms_offer",
    "smsend_opt_out",
    "smsend_pipeline_alerts",
    "smsend_reply_workflow",
    "smsend_reseller_billing",
    "smsend_reseller_onboarding",
    "smsend_warehouse_load",
    "smsend_warehouse_report",
}


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bag = DagBag(dag_folder=str(EXAMPLES), safe_mode=False)
    return bag, caught


def test_every_example_imports_without_error(dagbag):
    bag, _ = dagbag
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == EXPECTED


def test_no_example_raises_a_warning(dagbag):
    _, caught = dagbag
    ours = [
        w for w in caught if str(EXAMPLES) in str(w.filename) or "airflow_provider_smsend" in str(w.filename)
    ]
    assert ours == [], [f"{w.filename}:{w.lineno}: {w.message}" for w in ours]


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("smsend_*.py")), ids=lambda p: p.name)
def test_every_example_is_documented_at_its_top(path):
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    assert docstring and len(docstring.splitlines()) >= 3, f"{path.name} needs a module docstring"


def test_examples_are_tagged_and_have_tasks(dagbag):
    bag, _ = dagbag
    for dag_id in EXPECTED:
        dag = bag.dags[dag_id]
        assert "smsend" in dag.tags
        assert dag.task_dict, dag_id


LOGICAL_DATE_ONLY = re.compile(
    r"\{\{[^}]*\b(ds|ds_nodash|ts|ts_nodash|logical_date|data_interval_start|data_interval_end)\b(?!\s*\()[^}]*\}\}"
)


@pytest.mark.parametrize(
    "path",
    [*sorted(EXAMPLES.glob("smsend_*.py")), EXAMPLES.parent / "README.md"],
    ids=lambda p: p.name,
)
def test_templates_work_on_a_run_without_logical_date(path):
    """A run triggered from the REST API or `airflow dags trigger` without --logical-date has no `ds`,
    `ts` or `logical_date` in its context (Airflow 3): the examples use `dag_run.run_after` instead."""
    found = []
    for match in LOGICAL_DATE_ONLY.finditer(path.read_text(encoding="utf-8")):
        name = match.group(1)
        if re.search(rf"\|\s*{name}\b", match.group(0)):  # used as a filter: `dag_run.run_after | ds`
            continue
        found.append(match.group(0))
    assert found == [], f"{path.name}: templates that fail on a run without a logical date: {found}"


def test_the_opt_out_example_is_scheduled_by_an_inbound_sms_watcher(dagbag):
    """Its asset is watched by the inbound event trigger (kwargs without a secret or the customer's
    number), and its task records opt-outs in the warehouse's suppression list."""
    from airflow_provider_smsend.transfers.inbound_to_sql import SmSendInboundToSqlOperator
    from airflow_provider_smsend.triggers.inbound_event import SmSendInboundSmsEventTrigger

    module = {}
    exec(
        compile((EXAMPLES / "smsend_opt_out.py").read_text(encoding="utf-8"), "smsend_opt_out.py", "exec"),
        module,
    )
    (watcher,) = module["replies"].watchers
    assert isinstance(watcher.trigger, SmSendInboundSmsEventTrigger)
    _, kwargs = watcher.trigger.serialize()
    assert kwargs["cursor_conn_id"] == "warehouse" and kwargs["sharecode"] == "001"
    bag, _ = dagbag
    task = bag.dags["smsend_opt_out"].task_dict["record_replies"]
    assert isinstance(task, SmSendInboundToSqlOperator)
    assert task.opt_out_keywords == ["STOP", "CANCELLAMI"] and task.conn_id == "warehouse"


def test_the_consent_campaign_skips_opt_outs_caps_per_campaign_and_keeps_quiet_hours(dagbag):
    bag, _ = dagbag
    task = bag.dags["smsend_consent_campaign"].task_dict["send_offer"]
    assert (task.suppression_conn_id, task.suppression_table) == ("warehouse", "smsend_suppression")
    assert task.campaign == "weekly-offer" and task.max_per_recipient[0] == 1
    assert task.send_window is not None and task.send_window.tz == "Europe/Rome"
    assert task.recipients_sql is None and "{{" in str(task.recipients)  # a CSV path, no customer inline
