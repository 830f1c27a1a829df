"""The examples that train networks run, on small settings, and do what they say."""

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("skorch")
pytest.importorskip("matplotlib")

# Each trains networks: seconds, not milliseconds.
pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assert_figure(path, min_kb):
    # The same layouts saved with empty axes take 9 KB (the confusion matrix),
    # 12 to 18 KB (two axes side by side) and 24 to 31 KB (grids of 10 and 15
    # landscape axes); each minimum lies well above its empty layout and well
    # below what the example draws (23, 43, 112, 65 and 93 KB).
    size = path.stat().st_size
    assert size > min_kb * 1000, f"{path.name}: {size} bytes"


def test_classify_training_stage(tmp_path, capsys):
    from sklandscapes import ActivationExtractor

    example = load("plot_classify_training_stage")
    search = example.main(
        [
            "--n-networks", "8",
            "--n-splits", "4",
            "--n-points", "120",
            "--n-landscapes", "3", "5",
            "--C", "1", "10",
            "--out", str(tmp_path),
        ]
    )  # fmt: skip
    # Three stages: chance is 1/3. The best of 8 candidates on 24 samples
    # scores between 0.83 and 1.0 for seeds 0 to 2; 0.7 leaves room for
    # platform rounding while staying more than twice chance.
    assert search.best_score_ >= 0.7
    assert len(search.cv_results_["params"]) == 2 * 2 * 2
    # The networks themselves are the pipeline's input (the used-by case).
    assert isinstance(search.best_estimator_[0], ActivationExtractor)
    assert_figure(tmp_path / "training_stage_confusion.png", min_kb=15)
    assert_figure(tmp_path / "training_stage_landscapes.png", min_kb=60)
    out = capsys.readouterr().out
    assert "Best parameters" in out
    assert "grouped by network" in out


def test_permutation_test_stages(tmp_path, capsys):
    example = load("plot_permutation_test_stages")
    test = example.main(
        [
            "--n-networks", "6",
            "--max-epochs", "250",
            "--n-permutations", "999",
            "--out", str(tmp_path),
        ]
    )  # fmt: skip
    assert 0 < test.pvalue_ <= 1
    # The network is the unit: 6 networks, all 2**6 sign flips enumerated.
    assert test.unit_ == "group"
    assert test.null_distribution_.shape == (64,)
    assert test.groups_.tolist() == [0.75, 0.9]
    # All 6 networks reach both thresholds within 250 epochs, so 6 pairs of
    # snapshots: the exact p-value is at least 2 / 2**6 = 0.031 (flipping
    # every sign gives the observed statistic back). The stages differ at
    # the 5% level.
    assert test.table_[0]["n_units"] == 6 and test.table_[0]["exhaustive"]
    assert test.pvalue_ <= 0.05
    assert test.statistic_ > np.percentile(test.null_distribution_, 95)
    assert_figure(tmp_path / "permutation_test_stages.png", min_kb=30)
    assert_figure(tmp_path / "permutation_test_landscapes.png", min_kb=45)
    out = capsys.readouterr().out
    assert "p-value" in out


def test_complexity_curve(tmp_path, capsys):
    example = load("plot_complexity_curve")
    thresholds = ["0.7", "0.8", "0.9"]
    norms = example.main(
        ["--thresholds", *thresholds, "--max-epochs", "250", "--out", str(tmp_path)]
    )
    # Input, three hidden layers and the logits, at every threshold.
    assert norms.shape == (len(thresholds), 5)
    assert np.all(norms >= 0)
    # Layer 0 is the input batch, the same for every snapshot, so its norm is
    # exactly the same.
    np.testing.assert_array_equal(norms[:, 0], norms[0, 0])
    # As in the paper, complexity grows with training: the first hidden layer's
    # norm is 0.029 at 70% and 0.037 at 90% training accuracy for this seed.
    assert norms[-1, 1] > 1.1 * norms[0, 1]
    # The nine holes of the input give a visible H1 landscape.
    assert norms[0, 0] > 0.01
    snapshots = sorted((tmp_path / "snapshots").glob("snapshot_*.pt"))
    assert len(snapshots) == len(thresholds)
    assert_figure(tmp_path / "complexity_curve.png", min_kb=60)
    out = capsys.readouterr().out
    assert "Topological complexity" in out


def test_training_dynamics(tmp_path, capsys):
    example = load("plot_training_dynamics")
    result = example.main(
        ["--n-networks", "2", "--max-epochs", "20", "--every", "5",
         "--n-points", "60", "--out", str(tmp_path)]
    )  # fmt: skip
    record = result.topology
    # The untrained networks (epoch 0), then every 5 epochs.
    assert record.epochs.tolist() == [0, 5, 10, 15, 20]
    # Input and 4 hidden layers and logits, for both networks at every record.
    assert record.complexity.shape == (2, 5, 6)
    assert np.isfinite(record.complexity).all()
    # The input batch does not train; it has the nine holes.
    np.testing.assert_array_equal(record.complexity[..., 0], record.complexity[0, 0, 0])
    assert record.complexity[0, 0, 0] > 0.01
    assert_figure(tmp_path / "training_dynamics.png", min_kb=40)
    assert_figure(tmp_path / "training_accuracy.png", min_kb=15)
    assert "every 5 epochs" in capsys.readouterr().out


def test_cnn_digits(tmp_path, capsys):
    example = load("plot_cnn_digits")
    complexity, trained = example.main(
        ["--max-epochs", "2", "--every", "1", "--n-points", "80",
         "--out", str(tmp_path)]
    )  # fmt: skip
    # Input, (ReLU maps, pooled maps) x 2 blocks, logits; one row per epoch
    # and one for the untrained network.
    assert complexity.shape == (3, 6)
    # The callback's last record is the trained network through the pipeline.
    np.testing.assert_array_equal(complexity[-1], trained)
    out = capsys.readouterr().out
    assert "'features.1', 'features.2', 'features.4', 'features.5'" in out
    # Epoch 0, the untrained network, whose accuracy skorch does not measure.
    assert re.search(r"^ +0 +- ", out, flags=re.MULTILINE)
    assert_figure(tmp_path / "cnn_dynamics.png", min_kb=30)
    assert_figure(tmp_path / "cnn_landscapes.png", min_kb=40)


def test_functional_cnn(tmp_path, capsys):
    example = load("plot_functional_cnn")
    names, complexity = example.main(
        ["--max-epochs", "1", "--n-batches", "2", "--n-points", "40",
         "--out", str(tmp_path)]
    )  # fmt: skip
    # F.relu and F.max_pool2d are layers, named where forward calls them.
    assert names == ["input", "relu:0", "max_pool2d:0", "relu:1", "max_pool2d:1", "fc"]
    # Two networks (untrained, trained) on two batches each.
    assert complexity.shape == (4, 6)
    assert np.isfinite(complexity).all()
    # The input layer is the batch itself, the same for both networks.
    np.testing.assert_array_equal(complexity[:2, 0], complexity[2:, 0])
    out = capsys.readouterr().out
    assert "[False  True  True  True  True False]" in out  # the ReLU layers
    # At these settings the example draws 54 and 119 KB.
    assert_figure(tmp_path / "functional_cnn_complexity.png", min_kb=30)
    assert_figure(tmp_path / "functional_cnn_landscapes.png", min_kb=60)


def test_transformer_tokens(tmp_path, capsys):
    example = load("plot_transformer_tokens")
    names, results = example.main(
        ["--max-epochs", "1", "--n-batches", "2", "--n-points", "20",
         "--out", str(tmp_path)]
    )  # fmt: skip
    # The blocks' functional ReLUs are seen: the fast path was switched off.
    assert names == [
        "input", "encoder.layers.0.relu", "encoder.layers.1.relu", "head"
    ]  # fmt: skip
    flat, tokens = results["one point per sequence"], results["per token"]
    assert flat.shape == tokens.shape == (4, 4)
    # The logits have no token axis: the same clouds, the same complexity.
    np.testing.assert_array_equal(flat[:, -1], tokens[:, -1])
    # The hidden layers' clouds differ (8 x 20 token points against 20).
    assert not np.allclose(flat[:, 1:3], tokens[:, 1:3])
    assert torch_fastpath_enabled()
    # Two complexity axes side by side: 110 KB drawn here.
    assert_figure(tmp_path / "transformer_tokens.png", min_kb=60)
    assert "token_axis=1" in capsys.readouterr().out


def torch_fastpath_enabled():
    import torch

    return torch.backends.mha.get_fastpath_enabled()
