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
