"""The README's Python snippets run, in order, as a new user would paste them."""

import re
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.mark.filterwarnings("error::sklandscapes.exceptions.SklandscapesWarning")
def test_readme_snippets_run():
    pytest.importorskip("torch")
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 2
    namespace = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    # The extraction snippet: one cloud per layer for every snapshot taken.
    clouds = namespace["clouds"]
    assert clouds.shape == (len(namespace["networks"]), 4)
    assert set(np.unique(namespace["thresholds"])) == {0.7, 0.75}
    assert namespace["model"].steps[-1][0] == "svm"
    # The pipeline runs end to end on stage names; two grouped folds, each
    # tested on two networks (four snapshots), so scores are multiples of 1/4.
    scores = namespace["scores"]
    assert scores.shape == (2,)
    assert np.all(np.isin(scores, [0, 0.25, 0.5, 0.75, 1]))
    assert sorted(set(namespace["stages"])) == ["accuracy ≥ 70%", "accuracy ≥ 75%"]
    # What the README warns about: the float thresholds are no class labels.
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        namespace["model"].fit(namespace["clouds"], namespace["thresholds"])
