"""Sphinx configuration of the sk-convae documentation.

Build the site, with the example gallery executed and warnings as errors, from the
repository root::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

Add ``-D plot_gallery=0`` to skip running the examples while editing text.
"""

import sys
from pathlib import Path

import sk_convae

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "sphinxext"))

# -- Project -------------------------------------------------------------------

project = "sk-convae"
author = "sk-convae developers"
copyright = "sk-convae developers"
release = sk_convae.__version__
version = ".".join(release.split(".")[:2])

# -- General -------------------------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
    "sphinx_copybutton",
    "api_coverage",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = [
    "_build",
    "_inventories",
    "images/**/*.md",
    "auto_examples/*.ipynb",
    "auto_examples/*.py",
    "auto_examples/*.zip",
    "auto_examples/*.md5",
    "auto_examples/*.codeobj.json",
    "sg_execution_times.rst",
]
default_role = "obj"
add_module_names = False
# the page tables of contents list "fit", not "ConvAutoEncoderTransformer.fit"
toc_object_entries_show_parents = "hide"

# -- MyST ----------------------------------------------------------------------

myst_enable_extensions = ["colon_fence", "dollarmath"]
myst_heading_anchors = 3

# -- autodoc, autosummary, numpydoc ---------------------------------------------

autosummary_generate = True
autodoc_typehints = "none"

numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
# link the types in "Parameters" (``ndarray of shape (n, d)``, ``str or None``)
numpydoc_xref_param_type = True
numpydoc_xref_aliases = {
    "ndarray": "numpy.ndarray",
    "dtype": "numpy.dtype",
    "memmap": "numpy.memmap",
    "Generator": "numpy.random.Generator",
    "RandomState": "numpy.random.RandomState",
    "path-like": ":term:`path-like <path-like object>`",
    "Path": "pathlib.Path",
    "Tensor": "torch.Tensor",
    "torch.device": "torch.device",
    "device": "torch.device",
    "Module": "torch.nn.Module",
    "nn.Module": "torch.nn.Module",
    "Bunch": "sklearn.utils.Bunch",
    "Pipeline": "sklearn.pipeline.Pipeline",
    "DataFrame": "pandas.DataFrame",
    "Axes": "matplotlib.axes.Axes",
    "Figure": "matplotlib.figure.Figure",
    "AxesImage": "matplotlib.image.AxesImage",
    "Line2D": "matplotlib.lines.Line2D",
    "PathCollection": "matplotlib.collections.PathCollection",
    "ConvAutoEncoderTransformer": "sk_convae.ConvAutoEncoderTransformer",
}
numpydoc_xref_ignore = "all"
# numpydoc checks every docstring the build renders, as tests/test_docstrings.py
# does (which also asks classes and functions for See Also and Examples)
numpydoc_validation_checks = {"all", "ES01", "EX01", "RT02", "SA01"}

# -- intersphinx: local inventories, no network ----------------------------------
# docs/_inventories/make_inventories.py writes these files from the installed
# packages; the links still point at each project's site.

intersphinx_mapping = {
    "python": ("https://docs.python.org/3/", "_inventories/python.inv"),
    "numpy": ("https://numpy.org/doc/stable/", "_inventories/numpy.inv"),
    "sklearn": ("https://scikit-learn.org/stable/", "_inventories/sklearn.inv"),
    "torch": ("https://docs.pytorch.org/docs/stable/", "_inventories/torch.inv"),
    "skorch": ("https://skorch.readthedocs.io/en/stable/", "_inventories/skorch.inv"),
    "matplotlib": ("https://matplotlib.org/stable/", "_inventories/matplotlib.inv"),
    "pandas": ("https://pandas.pydata.org/docs/", "_inventories/pandas.inv"),
}

# -- sphinx-gallery --------------------------------------------------------------

# The examples take command-line options; the gallery runs them without any
# (sphinx-gallery's default ``reset_argv``), that is with their defaults.

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"__init__\.py",
    "abort_on_example_error": True,
    "remove_config_comments": True,
    "matplotlib_animations": False,
    "reset_modules": ("matplotlib", "gallery_hooks.reset_torch"),
    "within_subsection_order": "gallery_hooks.ExampleOrder",
    "doc_module": ("sk_convae",),
    "reference_url": {"sk_convae": None},
    "backreferences_dir": "generated/backreferences",
    "show_memory": False,
    "download_all_examples": False,
    "image_scrapers": ("matplotlib",),
    "min_reported_time": 1,
}

# -- HTML ------------------------------------------------------------------------

html_theme = "pydata_sphinx_theme"
html_title = f"sk-convae {release}"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_theme_options = {
    "logo": {"text": "sk-convae"},
    "navbar_start": ["navbar-logo"],
    "navbar_center": ["navbar-nav"],
    "navbar_end": ["theme-switcher"],
    "header_links_before_dropdown": 8,
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "secondary_sidebar_items": ["page-toc", "sourcelink"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version", "theme-version"],
}
# light or dark as the reader's system prefers (the theme's switcher changes it)
html_context = {"default_mode": "auto"}
html_sidebars = {
    "index": [],
    "getting_started": [],
    "changelog": [],
    "contributing": [],
    "benchmarks": [],
}
html_show_sourcelink = False
html_copy_source = False
