"""Sphinx configuration of the provider's docs site (``make docs``, ``scripts/docs.sh``).

The build is offline (no intersphinx): a cross-reference to another project (Airflow, pandas,
requests, ...) cannot resolve and is not reported; a reference inside ``airflow_provider_smsend``
must resolve, or the build (warnings as errors, nitpicky) fails.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sphinx.application import Sphinx
    from sphinx.environment import BuildEnvironment

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# Autodoc imports the Airflow layer; Airflow needs a home it may write to (scripts/docs.sh sets a
# temporary one). The examples are imported too, as DAG files are: nothing runs at import.
os.environ.setdefault("AIRFLOW_HOME", str(ROOT / "docs" / "_build" / "airflow-home"))

from airflow_provider_smsend import __version__  # noqa: E402

project = "airflow-provider-smsend"
author = "The airflow-provider-smsend authors"
copyright = "The airflow-provider-smsend authors, Apache License 2.0"  # noqa: A001
release = version = __version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "integration-logos", "Thumbs.db", ".DS_Store"]
templates_path: list[str] = []

# MyST: headings get anchors (README and docs/*.md link to them as #section), fences are code.
myst_heading_anchors = 4
myst_enable_extensions = ["colon_fence"]

# Autodoc: the docstrings are Sphinx style (:param x:); signatures carry the type hints.
autodoc_default_options = {
    "members": True,
    "show-inheritance": True,
    "member-order": "bysource",
}
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented_params"
autodoc_class_signature = "separated"
autoclass_content = "both"
autodoc_preserve_defaults = True

# Every reference inside the package must resolve; references to other projects cannot (offline).
nitpicky = True
OWN = "airflow_provider_smsend."
nitpick_ignore_regex = [
    (r"py:.*", rf"(?!{re.escape(OWN)}).*"),
]


def _own_object(target: str) -> Any:
    """The package's object a dotted name points to, or None."""
    parts = target.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for name in parts[cut:]:
                obj = getattr(obj, name)
        except AttributeError:
            return None
        return obj
    return None


def resolve_own_reference(app: Sphinx, env: BuildEnvironment, node: Any, contnode: Any) -> Any:
    """Resolve a package reference the Python domain missed: a name re-exported by a package
    (``client.SmSendClient``) links to where it is documented (``client.http.SmSendClient``); a
    private object (``_LedgerOperator``, ``client._soap_zeep``) or a type variable is not
    documented and stays plain text. Anything else stays missing, and the build fails."""
    target = node.get("reftarget", "")
    if node.get("refdomain") != "py" or not target.startswith(OWN):
        return None
    if any(part.startswith("_") for part in target.split(".")):
        return contnode
    obj = _own_object(target)
    if isinstance(obj, typing.TypeVar):
        return contnode
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not module or not qualname or f"{module}.{qualname}" == target:
        return None
    node["reftarget"] = f"{module}.{qualname}"
    return env.domains.python_domain.resolve_xref(
        env, node["refdoc"], app.builder, node["reftype"], node["reftarget"], node, contnode
    )


def setup(app: Sphinx) -> None:
    app.connect("missing-reference", resolve_own_reference)


html_theme = "alabaster"
html_title = f"airflow-provider-smsend {release}"
html_logo = "integration-logos/smsend.svg"
html_static_path: list[str] = []
html_show_sourcelink = False
