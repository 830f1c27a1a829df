"""Digests of the fast presets' results, to check that a refactor changes none.

``python tests/fast_preset_digests.py --write`` runs both fast presets (one
job: no second process) and records the SHA-256 of every array of their
``results.npz`` (timings aside) and of ``landscapes.npy`` in
``tests/data/fast_preset_digests.json``, under a key of this platform.
Training rounds differently on another processor or library version, so
digests are compared only on the platform that recorded them;
``tests/test_fast_presets.py`` does.
"""

import argparse
import hashlib
import json
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

DIGESTS = Path(__file__).resolve().parent / "data" / "fast_preset_digests.json"
EXPERIMENTS = ("synthetic", "digits")
# Measured, not results: they differ from run to run.
SKIPPED = ("timings", "timing_history")


def platform_key():
    """What decides the bits of a run: processor kind and library versions."""
    import gudhi
    import sklearn
    import torch

    return " ".join(
        [
            platform.machine(),
            torch.backends.cpu.get_cpu_capability(),
            f"python-{platform.python_version()}",
            f"torch-{torch.__version__}",
            f"numpy-{np.__version__}",
            f"scikit-learn-{sklearn.__version__}",
            f"gudhi-{gudhi.__version__}",
        ]
    )


def digest(value):
    value = np.asarray(value)
    if value.dtype.kind in "USO":
        text = str(value)
        try:  # JSON in an array: compare what it says, not its spacing.
            text = json.dumps(json.loads(text), sort_keys=True)
        except ValueError:
            pass
        return hashlib.sha256(text.encode()).hexdigest()
    header = f"{value.dtype.str}{value.shape}".encode()
    return hashlib.sha256(header + np.ascontiguousarray(value).tobytes()).hexdigest()


def run_digests(experiment, out):
    """Run a fast preset with one job into ``out``; its arrays' digests."""
    from sklandscapes.experiments import make_config, run_experiment

    config = make_config(experiment, "fast")
    # One BLAS thread: how a product is split among threads changes its
    # last bits, and the digests are of the bits.
    with threadpool_limits(1):
        run_experiment(config, out, n_jobs=1, device="cpu", verbose=0)
    with np.load(Path(out) / "results.npz") as stored:
        found = {key: digest(stored[key]) for key in stored.files if key not in SKIPPED}
    # Stored beside results.npz since the landscapes are streamed; the same
    # array, so the same digest as when it was inside.
    found["landscapes"] = digest(np.load(Path(out) / "landscapes.npy"))
    return found


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="record the digests")
    args = parser.parse_args(argv)
    recorded = json.loads(DIGESTS.read_text()) if DIGESTS.exists() else {}
    found = {}
    for experiment in EXPERIMENTS:
        with tempfile.TemporaryDirectory() as out:
            found[experiment] = run_digests(experiment, out)
    key = platform_key()
    if args.write:
        recorded[key] = found
        DIGESTS.parent.mkdir(exist_ok=True)
        DIGESTS.write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")
        print(f"recorded for {key}")
        return 0
    same = recorded.get(key) == found
    print(f"{key}: {'the same' if same else 'different or not recorded'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
