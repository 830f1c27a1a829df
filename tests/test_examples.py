"""The examples run, on small settings, and do what they say."""

import importlib.util
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_circles_vs_figure_eights(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    example = load("plot_circles_vs_figure_eights")
    scores = example.main(
        ["--n-per-class", "10", "--n-points", "60", "--out", str(tmp_path)]
    )
    assert scores.mean() >= 0.9
    assert (tmp_path / "circles_vs_figure_eights.png").stat().st_size > 10_000
    assert "5-fold accuracy" in capsys.readouterr().out
