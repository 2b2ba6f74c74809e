"""Sphinx extension: the API reference lists every public object.

When the build starts, every public class and function of the public modules
(their ``__all__``, which ``tests/test_public_api.py`` checks) must appear as an
entry of ``api.rst``; a missing one is a warning, an error with ``-W``, so that a
new public object cannot be left out of the reference.
"""

import importlib
import re
from pathlib import Path

from sphinx.util import logging

PUBLIC_MODULES = (
    "sk_convae",
    "sk_convae.callbacks",
    "sk_convae.datasets",
    "sk_convae.exceptions",
    "sk_convae.plotting",
)

logger = logging.getLogger(__name__)


def check_api_page(app):
    text = (Path(app.srcdir) / "api.rst").read_text()
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:  # every public module has one (test_public_api)
            if not callable(getattr(module, name)):
                continue
            if not re.search(rf"^\s+{re.escape(name)}\s*$", text, re.M):
                logger.warning(
                    f"{module_name}.{name} is public but missing from api.rst",
                    location="api",
                )


def setup(app):
    app.connect("builder-inited", check_api_page)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
