"""Airflow's own provider checks (scripts/provider_checks.py) report no violation; they catch what they should."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "provider_checks.py"


@pytest.fixture(scope="module")
def checks():
    spec = importlib.util.spec_from_file_location("provider_checks", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def test_provider_checks_report_no_violation():
    proc = subprocess.run(
        [sys.executable, str(SCRIPT)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.rstrip().endswith(", 0 violations"), proc.stdout


def test_conn_id_check_finds_an_untemplated_conn_id_of_a_parent(checks, tmp_path):
    module = tmp_path / "operators.py"
    module.write_text(
        textwrap.dedent(
            """
            class BaseOperator:
                template_fields = ()

            class _LedgerOperator(BaseOperator):
                def __init__(self, *, ledger_conn_id=None, **kwargs):
                    super().__init__(**kwargs)
                    self.ledger_conn_id = ledger_conn_id

            class SendOperator(_LedgerOperator):
                template_fields = ("text",)

                def __init__(self, *, text, smsend_conn_id="smsend_default", **kwargs):
                    super().__init__(**kwargs)
                    self.text = text
                    self.smsend_conn_id = smsend_conn_id

            class FixedOperator(_LedgerOperator):
                template_fields = (*_LedgerOperator.template_fields, "ledger_conn_id")
            """
        )
    )
    violations = checks.conn_id_violations([module])
    assert len(violations) == 2, violations
    assert "_LedgerOperator: ['ledger_conn_id']" in violations[0]
    assert "SendOperator: ['ledger_conn_id', 'smsend_conn_id']" in violations[1]


def test_description_check_finds_a_link_run_into_the_next_word(checks):
    # How 0.2.0 described itself: the Providers page showed "https://www.smsend.itSMS".
    old = "`smSend <https://www.smsend.it>`__ SMS and MMS gateway: send, check numbers."
    (violation,) = checks.description_violations(old)
    assert "https://www.smsend.itSMS" in violation


def test_importing_the_sandbox_main_module_starts_nothing():
    # verify_providers imports every module: this one used to start the server and never return.
    proc = subprocess.run(
        [sys.executable, "-c", "import airflow_provider_smsend.sandbox.__main__"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""


@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "-m", "airflow_provider_smsend.sandbox", "--help"],
        [str(Path(sys.executable).with_name("smsend-sandbox")), "--help"],
    ],
    ids=["python -m", "console script"],
)
def test_the_sandbox_commands_still_run(command):
    proc = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: smsend-sandbox"), proc.stdout
