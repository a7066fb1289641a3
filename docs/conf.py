"""Sphinx configuration of the nnc documentation.

Build (warnings are errors):  make -C docs html
                          or  python -m sphinx -W -b html docs docs/_build/html
The API reference imports nnc, so the extension must be built first
(``pip install -e ".[docs]"`` or ``python setup.py build_ext --inplace``).
"""
import importlib.util
import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, ROOT)   # the source tree with its in-place build

import nnc  # noqa: E402  (fails loudly when the extension is not built)

project = "nnc"
author = "the nnc authors"
copyright = "the nnc authors, MIT licence"
release = nnc.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",     # numpydoc-style docstrings (with the extra "Shape" section)
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]
# MathJax from a Python package (no CDN: the pages render offline)
if importlib.util.find_spec("sphinx-mathjax-offline") is not None:
    extensions.append("sphinx-mathjax-offline")

exclude_patterns = ["_build"]
default_role = "code"
primary_domain = "py"

# -- docstrings ---------------------------------------------------------------
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_ivar = False          # "Attributes" as attribute entries (params keys and shapes)
napoleon_use_rtype = False
napoleon_custom_sections = ["Shape"]
autodoc_default_options = {"members": True, "member-order": "bysource", "show-inheritance": True}
autodoc_typehints = "none"
autodoc_class_signature = "mixed"
autodoc_preserve_defaults = True
autodoc_inherit_docstrings = False   # overrides without a docstring of their own are not repeated
add_module_names = False

# -- HTML -----------------------------------------------------------------------
html_title = f"nnc {release}"
if importlib.util.find_spec("furo") is not None:
    html_theme = "furo"
else:
    html_theme = "alabaster"
html_static_path = []
html_show_sourcelink = False


def _public_bases(app, name, obj, options, bases):
    """Show a class's public bases: a private base (nnc.models._Model) is
    replaced by its own bases."""
    while any(b.__name__.startswith("_") for b in bases):
        bases[:] = [p for b in bases for p in (b.__bases__ if b.__name__.startswith("_") else (b,))]


def setup(app):
    app.connect("autodoc-process-bases", _public_bases)
