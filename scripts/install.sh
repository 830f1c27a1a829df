# Sourced by the other scripts: create .venv if needed and install the package.
# torch==2.13.0 comes first: it is the CPU wheel available offline here, and any
# other version would download gigabytes of CUDA packages.
python3 -m venv .venv
. .venv/bin/activate
python -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
python -m pip install --quiet --disable-pip-version-check -e ".[test,torch,plot]"
