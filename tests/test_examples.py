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


def test_docs_gallery_options_exist(tmp_path, monkeypatch):
    """The options the docs build gives each example are options of that example."""
    docs = EXAMPLES.parent / "docs" / "sphinxext"
    monkeypatch.syspath_prepend(str(docs))
    import gallery_runner

    monkeypatch.setattr(gallery_runner, "OUT", tmp_path)
    assert "plot_classify_training_stage.py" in gallery_runner.EXAMPLE_ARGS
    for name, args in gallery_runner.EXAMPLE_ARGS.items():
        source = (EXAMPLES / name).read_text()
        for option in (a for a in args if a.startswith("--")):
            assert f'"{option}"' in source, (name, option)
    # Each run starts from an empty output folder of its own: a figure of an
    # earlier build is not shown as this one's.
    stale = tmp_path / "plot_complexity_curve" / "old.png"
    stale.parent.mkdir()
    stale.write_bytes(b"")
    script = {"src_file": str(EXAMPLES / "plot_complexity_curve.py")}
    argv = gallery_runner.reset_argv({}, script)
    assert argv == ["--max-epochs", "250", "--out", str(stale.parent)]
    assert not stale.parent.exists()
