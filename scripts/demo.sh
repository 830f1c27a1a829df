#!/usr/bin/env bash
# Install sklandscapes into .venv and run the main job on the embedded default.
# Extra arguments go to the job (try --help).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/install.sh
sklandscapes demo "$@"
