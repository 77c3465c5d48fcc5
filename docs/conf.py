"""Sphinx configuration of the provider's docs site (``make docs``, ``scripts/docs.sh``).

The build is offline (no intersphinx): a cross-reference to another project (Airflow, pandas,
requests, ...) cannot resolve and is not reported; a reference inside ``airflow_provider_smsend``
must resolve, or the build (warnings as errors, nitpicky) fails.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "docs" / "_ext"))
# Autodoc imports the Airflow layer; Airflow needs a home it may write to (scripts/docs.sh sets a
# temporary one).
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
    "smsend_api",  # docs/_ext/smsend_api.py: the API pages' module lists, the package's references
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_ext", "integration-logos", "Thumbs.db", ".DS_Store"]
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

# Every reference inside the package must resolve (docs/_ext/smsend_api.py resolves re-exported
# names); references to other projects cannot (offline: no intersphinx) and are not reported.
nitpicky = True
OWN = "airflow_provider_smsend."
nitpick_ignore_regex = [
    (r"py:.*", rf"(?!{re.escape(OWN)}).*"),
]


html_theme = "alabaster"
html_title = f"airflow-provider-smsend {release}"
html_logo = "integration-logos/smsend.svg"
html_static_path: list[str] = []
html_show_sourcelink = False
