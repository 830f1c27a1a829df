"""Sphinx configuration of the sklandscapes documentation.

Build with ``bash scripts/docs.sh`` (warnings are errors). The gallery is built
from ``examples/`` by sphinx-gallery, which runs every example (about two
minutes on 2 CPU cores, with the options of ``sphinxext/gallery_runner.py``) and
shows what it prints and the figures it writes;
``SKLANDSCAPES_DOCS_RUN_GALLERY=0`` builds the pages without running them (no
figures, placeholder thumbnails), for a quick look at the text.
The figures of the user guide are drawn at build time by our own code through
matplotlib's plot directive (the scripts are in ``docs/_pyplots/`` or inline).
"""

import os
import sys
from pathlib import Path

# The figures must not depend on how many threads torch and BLAS find free on
# a busy machine: these networks and Gram matrices are tiny, one thread is
# fastest. Set before numpy is first imported, which reads it once.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import sklandscapes  # noqa: E402

DOCS = Path(__file__).resolve().parent
# The plot directive's scripts import the small helpers in docs/_pyplots.
sys.path.insert(0, str(DOCS / "_pyplots"))
# How the gallery runs the examples (options, figures); see gallery_runner.py.
sys.path.insert(0, str(DOCS / "sphinxext"))

project = "sklandscapes"
author = "sklandscapes developers"
copyright = "2026, sklandscapes developers"
release = sklandscapes.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "matplotlib.sphinxext.plot_directive",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "**.ipynb_checkpoints", "_pyplots"]
root_doc = "index"
default_role = "py:obj"

# -- API reference -----------------------------------------------------------

autosummary_generate = True
autodoc_default_options = {"members": False, "inherited-members": False}
autodoc_typehints = "none"
# The class template lists the methods itself; numpydoc would list them again
# (and the inherited scikit-learn ones, whose docstrings cite scikit-learn's
# own user guide labels).
numpydoc_show_class_members = False
numpydoc_show_inherited_class_members = False
numpydoc_class_members_toctree = False
# Types in "Parameters" are prose ("object array of shape ..."), not
# cross-reference targets.
numpydoc_xref_param_type = False

intersphinx_mapping = {
    "python": ("https://docs.python.org/3", None),
    "numpy": ("https://numpy.org/doc/stable/", None),
    "sklearn": ("https://scikit-learn.org/stable/", None),
    "matplotlib": ("https://matplotlib.org/stable/", None),
    "torch": ("https://docs.pytorch.org/docs/stable/", None),
    "skorch": ("https://skorch.readthedocs.io/en/stable/", None),
    "joblib": ("https://joblib.readthedocs.io/en/stable/", None),
}
# The build runs offline (CI, this machine): an inventory that cannot be
# fetched must not turn into an error under -W. Unresolved external names are
# plain text either way, since nitpicky is off.
intersphinx_timeout = 5
suppress_warnings = ["intersphinx.external"]
if os.environ.get("SKLANDSCAPES_DOCS_INTERSPHINX", "0") != "1":
    intersphinx_mapping = {}

# -- Gallery -----------------------------------------------------------------

run_gallery = os.environ.get("SKLANDSCAPES_DOCS_RUN_GALLERY", "1") != "0"
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "plot_gallery": run_gallery,
    "download_all_examples": False,
    "within_subsection_order": "FileNameSortKey",
    "doc_module": ("sklandscapes",),
    "backreferences_dir": "generated/backreferences",
    "reference_url": {"sklandscapes": None},
    "remove_config_comments": True,
    "show_memory": False,
    # The examples are scripts that write their figures to --out: run them
    # with small options and an output folder in the build, and show the
    # files they write. Named by string, so that the configuration pickles.
    "reset_argv": "gallery_runner.reset_argv",
    "image_scrapers": ("gallery_runner.written_figures",),
}

# -- Figures drawn at build time ---------------------------------------------

plot_include_source = True
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 100)]
plot_rcparams = {"figure.autolayout": False}
plot_apply_rcparams = True
plot_working_directory = str(DOCS / "_pyplots")

# -- HTML --------------------------------------------------------------------

html_theme = "pydata_sphinx_theme"
html_title = f"sklandscapes {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_static_path = []
