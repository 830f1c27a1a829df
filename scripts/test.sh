#!/usr/bin/env bash
# Install sklandscapes and its test dependencies into .venv, then run the tests.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k landscapes`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/install.sh
python -m pytest "$@"
