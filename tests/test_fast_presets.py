"""The fast presets give the recorded results, bit for bit, on this platform.

A restructuring of the torch and experiment code must change no result: this
test reruns both fast presets and compares every array of ``results.npz``
(timings aside) with digests recorded before (``fast_preset_digests.py``).
"""

import json

import pytest

pytest.importorskip("torch")

from fast_preset_digests import (  # noqa: E402
    DIGESTS,
    EXPERIMENTS,
    platform_key,
    run_digests,
)


@pytest.mark.slow
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_fast_preset_results_are_unchanged(experiment, tmp_path):
    recorded = json.loads(DIGESTS.read_text()).get(platform_key())
    if recorded is None:
        pytest.skip(
            f"no digests recorded for this platform ({platform_key()}); "
            "python tests/fast_preset_digests.py --write records them"
        )
    found = run_digests(experiment, tmp_path)
    expected = recorded[experiment]
    changed = sorted(
        k for k in expected.keys() | found.keys() if expected.get(k) != found.get(k)
    )
    assert changed == []
