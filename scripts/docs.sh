#!/usr/bin/env bash
# Install sklandscapes with its docs dependencies into .venv, build the Sphinx
# site into docs/_build/html with warnings as errors, then run the doctests of
# the documentation pages (the package's own doctests run with the test suite).
# The gallery runs every example and shows its output and figures (about two
# minutes of the build on 2 cores; an example that fails fails the build);
# SKLANDSCAPES_DOCS_RUN_GALLERY=0 skips them for a quick look at the text.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/install.sh
python -m pip install --quiet --disable-pip-version-check -e ".[docs]"
# Tiny networks train fastest on one thread, far faster when the cores are busy.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
python -m sphinx -W --keep-going -b html docs docs/_build/html
python -m pytest -q -p no:cacheprovider --doctest-glob="*.rst" \
    docs/user_guide docs/reproduce.rst docs/comparison.rst docs/index.rst
echo "Documentation built: docs/_build/html/index.html"
