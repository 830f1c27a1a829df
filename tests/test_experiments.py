"""The experiments end to end on a tiny configuration: outputs, resume, Dask."""

import contextlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import time
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from conftest import assert_same_training  # noqa: E402

from sklandscapes import experiments  # noqa: E402
from sklandscapes.exceptions import DamagedFileWarning  # noqa: E402
from sklandscapes.experiments import (  # noqa: E402
    ExperimentError,
    _background,
    _data,
    _diagrams,
    _folder,
    _training,
    make_config,
    run_experiment,
)


def tiny_config(**overrides):
    values = dict(
        n_networks=2,
        widths=(2, 16, 16, 16, 2),
        thresholds=(0.6, 0.7),
        # Class 1 is 65% of the points: 0.6 comes at once, 0.7 within ~10 epochs.
        lr=1e-2,
        batch_size=64,
        max_epochs=40,
        spacing=0.05,
        sublattice_step=2,
        n_landscapes=5,
        resolution=51,
        n_permutations=99,
        # Watched during training: cheap here, and every resume test then
        # checks that the monitor's record survives interruptions too.
        monitor_every=1,
    )
    values.update(overrides)
    return make_config("synthetic", "fast", **values)


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    out = tmp_path_factory.mktemp("baseline")
    return run_experiment(tiny_config(), out, verbose=0)


def test_outputs_and_report(baseline):
    out = baseline.out
    for name in ("config.json", "results.npz", "report.md", "training/log.json"):
        assert (out / name).exists(), name
    figures = ("landscapes", "curves", "complexity", "pvalues", "activations", "layers")
    for figure in figures:
        assert (out / f"{figure}.png").stat().st_size > 5_000
    n_samples = len(baseline.thresholds)
    assert baseline.landscapes.shape == (n_samples, int(np.prod(baseline.shape)))
    # Input + 4 layers (3 hidden activations and the logits), H1 only.
    assert baseline.shape[:2] == (5, 1)
    stored = np.load(out / "results.npz")
    # The landscapes are beside results.npz, opened lazily.
    assert "landscapes" not in stored.files
    assert isinstance(baseline.landscapes, np.memmap)
    np.testing.assert_array_equal(np.load(out / "landscapes.npy"), baseline.landscapes)
    np.testing.assert_array_equal(stored["pvalues"], baseline.test.pvalues_)
    assert json.loads(str(stored["config"]))["n_networks"] == 2
    timings = json.loads(str(stored["timings"]))
    assert set(timings) >= {"training", "extraction", "persistence", "tests"}
    assert timings["training"] > 0 and timings["persistence"] > 0
    report = (out / "report.md").read_text()
    assert "## Where the time went" in report
    assert "## Permutation tests" in report and "![" in report
    # The input batch (the complement of the nine disks) has nine holes.
    assert baseline.observations["holes"]["mean"][0] == 9
    assert "Holm-corrected" in report and "## Landscape levels and grid" in report
    assert "| 0.7 | 2/2 |" in report  # networks that reached each threshold
    # Which layers differ: one row per layer, the stored adjusted p-values.
    test = baseline.test
    assert test.layer_pvalues_adjusted_.shape == (2, 2, 5)
    np.testing.assert_array_equal(
        stored["layer_pvalues_adjusted"], test.layer_pvalues_adjusted_
    )
    table = report.split("## Which layers differ")[1].split("##")[0]
    assert "| layer | 0.6 vs 0.7 |" in table
    for layer in range(5):
        p = test.layer_pvalues_adjusted_[0, 1, layer]
        cell = "≤ 0.01" if p <= 0.01 else f"{p:.3g}"
        assert f"| {layer} | {'**' + cell + '**' if p <= 0.05 else cell} |" in table


def test_tests_take_the_network_as_unit_and_show_the_papers(baseline):
    from sklandscapes import PermutationTest

    test, paper = baseline.test, baseline.paper_test
    settings = dict(n_permutations=99, grid=baseline.grid, random_state=0)
    assert test.unit_ == "group" and paper.unit_ == "sample"
    assert [r["n_units"] for r in test.table_] == [2]
    # The same tests, refitted from the stored arrays as a whole: the
    # streamed run gives the test by network bit for bit (it needs only the
    # means of the networks' subsamples, summed in the same order) ...
    stored = np.load(baseline.out / "results.npz")
    X, y = np.load(baseline.out / "landscapes.npy"), stored["thresholds"]
    by_network = PermutationTest(n_layers=5, **settings)
    by_network.fit(X, y, groups=stored["networks"])
    for name in ("pvalues", "statistics", "layer_pvalues", "layer_statistics"):
        np.testing.assert_array_equal(stored[name], getattr(by_network, name + "_"))
    np.testing.assert_array_equal(
        stored["layer_pvalues_adjusted"], by_network.layer_pvalues_adjusted_
    )
    # ... and the paper's test within the rounding of its Gram matrix, summed
    # in blocks by BLAS (a relative 1e-16 per entry; 1e-12 is far above it
    # and far below any difference between statistics that matters).
    by_sample = PermutationTest(**settings).fit(X, y)
    np.testing.assert_array_equal(stored["paper_pvalues"], by_sample.pvalues_)
    np.testing.assert_allclose(
        stored["paper_statistics"], by_sample.statistics_, rtol=1e-12
    )
    assert str(stored["unit"]) == "network"
    report = (baseline.out / "report.md").read_text()
    section = report.split("## Permutation tests")[1].split("## Which layers")[0]
    assert "**The unit is the network.**" in section
    assert "2 networks per pair" in section
    assert "### The paper's test, for comparison" in section
    assert "relabels every sample on its own" in section
    claims = report.split("## The paper's observations, checked")[1].split("##")[0]
    assert "with the network as the unit" in claims and "paper's test" in claims


def test_thresholds_reached_by_one_network_are_not_tested(rng, tmp_path):
    from types import SimpleNamespace

    from sklandscapes import PermutationTest
    from sklandscapes.experiments import _run, _vectors

    thresholds = np.repeat([0.5, 0.7, 0.9], [4, 4, 1])
    X = rng.normal(size=(9, 4))
    np.save(tmp_path / "landscapes.npy", X)
    vectorizer = SimpleNamespace(grid_=None, shape_=(2, 1, 1, 2))
    config = tiny_config(n_permutations=9)

    def features(networks):
        path = tmp_path / "landscapes.npy"
        summaries = _vectors.summaries(path, thresholds, networks, (2, 1, 1, 2), None)
        return _run._Features(
            path, vectorizer, thresholds, networks, None, summaries, None
        )

    networks = np.r_[np.arange(4), np.arange(4), 0]
    test, paper = _run._tests(config, features(networks), 1, 0)
    assert test.groups_.tolist() == paper.groups_.tolist() == [0.5, 0.7]
    assert test.layer_pvalues_.shape == (2, 2, 2)
    # The tests of the samples of the tested thresholds, from the whole X.
    settings = dict(n_permutations=9, random_state=config.seed)
    whole = PermutationTest(n_layers=2, **settings)
    whole.fit(X[:8], thresholds[:8], groups=networks[:8])
    np.testing.assert_array_equal(test.pvalues_, whole.pvalues_)
    np.testing.assert_array_equal(test.layer_statistics_, whole.layer_statistics_)
    paper_whole = PermutationTest(**settings).fit(X[:8], thresholds[:8])
    np.testing.assert_array_equal(paper.pvalues_, paper_whole.pvalues_)
    with pytest.raises(ExperimentError, match="reached by at least two networks"):
        _run._tests(config, features(networks * 0), 1, 0)


def test_complexity_is_exact_and_report_numbers_come_from_tables(baseline):
    from sklandscapes.stats import topological_complexity

    files = sorted((baseline.out / "diagrams").glob("*.npz"))
    layered = np.empty((len(files),) + (5, 1), dtype=object)
    for i, path in enumerate(files):
        layered[i] = _folder.load_diagrams(path)
    expected = topological_complexity(layered)
    # Same files, same closed form: equal up to summation order.
    np.testing.assert_allclose(
        np.sort(baseline.norms.ravel()), np.sort(expected.ravel()), rtol=1e-12
    )
    report = (baseline.out / "report.md").read_text()
    obs = baseline.observations
    table = report.split("## Topological complexity per layer")[1].split("##")[0]
    for value in obs["mean_complexity"]["0.7"]:
        assert f"{value:.3g}" in table
    claims = report.split("## The paper's observations, checked")[1].split("##")[0]
    for t, total in obs["mean_total_complexity"].items():
        assert f"{float(t):g}: {total:.3g}" in claims
    numbers = re.findall(r"^(\d+)\. \*\*", claims, flags=re.MULTILINE)
    assert numbers == ["1", "2", "3", "4"]
    assert "1. **The first layers see the input's nine holes**" in claims
    grid = obs["grid"]
    assert grid["n_landscapes"] == 5 and len(grid["kept_share"]) == 5
    # Five levels of the nine nearly equal holes keep about half of layer 0.
    assert 0.4 < grid["kept_share"][0] < 0.7


def test_holm_adjustment_matches_the_definition():
    from sklandscapes.stats import holm_adjust

    p = np.array([0.01, 0.04, 0.03, 0.005])
    # Sorted: 0.005*4, 0.01*3, 0.03*2, 0.04*1 -> running max 0.02, 0.03, 0.06, 0.06
    np.testing.assert_allclose(holm_adjust(p), [0.03, 0.06, 0.06, 0.02], rtol=1e-12)
    assert holm_adjust([0.9, 0.8]).max() == 1.0


def small_digits_config(**overrides):
    """A digits run of seconds: local homology, several input subsamples.

    Two networks: the tests need two to pair across thresholds.
    """
    settings = dict(
        n_networks=2,
        widths=(64, 8, 8, 10),
        thresholds=(0.3, 0.5),
        max_epochs=60,
        lr=1e-2,
        n_inputs=40,
        n_subsamples=2,
        n_permutations=9,
        resolution=21,
    )
    return make_config("digits", **{**settings, **overrides})


def test_two_jobs_with_several_subsamples_give_the_one_job_results(
    tmp_path, monkeypatch
):
    """Threads take whole networks: two of them extracting one network's
    activations on two subsamples at once would mix their hooks."""
    config = small_digits_config(n_networks=2, n_subsamples=3)
    # Without the diagrams during training, the threads compute every sample.
    monkeypatch.setattr(
        _background,
        "diagrams_during_training",
        lambda *args, **kwargs: contextlib.nullcontext(),
    )
    two = run_experiment(config, tmp_path / "two", n_jobs=2, verbose=0)
    one = run_experiment(config, tmp_path / "one", n_jobs=1, verbose=0)
    for path in sorted((tmp_path / "one" / "diagrams").glob("*.npz")):
        assert_same_diagrams(
            [_folder.load_diagrams(path)],
            [_folder.load_diagrams(tmp_path / "two" / "diagrams" / path.name)],
        )
    np.testing.assert_array_equal(two.landscapes, one.landscapes)
    np.testing.assert_array_equal(two.test.pvalues_, one.test.pvalues_)


def test_digits_input_layer_is_centered_by_the_paper_rule(tmp_path):
    """Pixels are non-negative: "auto" would leave layer 0 uncentered."""
    from sklandscapes import ActivationNormalizer, RipsPersistence

    config = small_digits_config()
    result = run_experiment(config, tmp_path, verbose=0)
    stored = _folder.load_diagrams(_folder.diagram_path(tmp_path, (0, 0, 0)))
    batch = _data.load_data(config).batches[0].astype(np.float64)
    rips = RipsPersistence(local=True)
    for center, same in ((True, True), ("auto", False)):
        normalized = ActivationNormalizer(method="local", center=center)
        expected = rips.fit_transform(normalized.fit_transform([batch]))[0, 0, 0]
        assert np.array_equal(stored[0, 0], expected) == same
    assert "rays" in result.observations
    assert len(result.observations["rays"]["alignment"]) == 4
    # Four observations (no nine holes in digits), numbered from 1.
    claims = (tmp_path / "report.md").read_text()
    claims = claims.split("## The paper's observations, checked")[1].split("##")[0]
    numbers = re.findall(r"^(\d+)\. \*\*", claims, flags=re.MULTILINE)
    assert numbers == ["1", "2", "3", "4"]
    assert "1. **Complexity is not monotonically decreasing" in claims


def test_diagrams_are_stored_per_sample(baseline):
    files = sorted((baseline.out / "diagrams").glob("*.npz"))
    assert len(files) == len(baseline.thresholds)
    diagrams = _folder.load_diagrams(files[0])
    assert diagrams.shape == (5, 1)
    assert diagrams[0, 0].shape[1] == 2


def test_interrupted_run_resumes_to_the_same_results(baseline, tmp_path, monkeypatch):
    config = tiny_config()
    saves = []
    original = _folder.save_diagrams

    def interrupt_after_two(path, diagrams):
        if len(saves) == 2:
            raise KeyboardInterrupt
        saves.append(path)
        original(path, diagrams)

    monkeypatch.setattr(_folder, "save_diagrams", interrupt_after_two)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(config, tmp_path, verbose=0)
    assert len(list((tmp_path / "diagrams").glob("*.npz"))) == 2
    assert not list((tmp_path / "diagrams").glob(".*tmp"))

    # Resuming retrains nothing and recomputes only the missing diagrams.
    monkeypatch.setattr(_folder, "save_diagrams", original)
    import sklandscapes.nets

    def no_training(*args, **kwargs):
        raise AssertionError("training was recomputed")

    monkeypatch.setattr(sklandscapes.nets, "train_networks", no_training)
    computed = []
    monkeypatch.setattr(
        _folder,
        "save_diagrams",
        lambda path, diagrams: (computed.append(path), original(path, diagrams)),
    )
    result = run_experiment(config, tmp_path, resume=True, verbose=0)
    assert len(computed) == len(baseline.thresholds) - 2
    # The timings keep the interrupted call's costs; only the diagrams
    # computed in a call divide its persistence time.
    history = result.timing_history
    assert [call["diagrams_computed"] for call in history] == [2, len(computed)]
    assert history[0]["timings"]["training"] > 0
    report = (tmp_path / "report.md").read_text()
    assert "over all 2 call(s)" in report
    np.testing.assert_array_equal(result.landscapes, baseline.landscapes)
    np.testing.assert_array_equal(result.test.pvalues_, baseline.test.pvalues_)


def test_training_interrupted_between_groups_resumes(tmp_path, monkeypatch):
    import sklandscapes.nets

    config = tiny_config(networks_per_group=1)
    whole = run_experiment(config, tmp_path / "whole", verbose=0)
    original = sklandscapes.nets.train_networks
    calls = []

    def train(*args, **kwargs):
        calls.append(args[2])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(sklandscapes.nets, "train_networks", train)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(config, tmp_path / "cut", verbose=0)
    assert (tmp_path / "cut" / "training" / "group0000.pt").exists()

    calls.clear()
    resumed = run_experiment(config, tmp_path / "cut", resume=True, verbose=0)
    assert calls == [1]  # only the second network trained again
    # The interrupted call trained the first group: its seconds count in
    # the report's "all calls" column.
    history = resumed.timing_history
    assert len(history) == 2 and history[0]["timings"]["training"] > 0
    total = history[0]["timings"]["training"] + history[1]["timings"]["training"]
    report = (tmp_path / "cut" / "report.md").read_text()
    this_call = resumed.timings["training"]
    assert f"| training | {this_call:.1f} | {total:.1f} |" in report
    np.testing.assert_array_equal(resumed.landscapes, whole.landscapes)
    np.testing.assert_array_equal(resumed.test.pvalues_, whole.test.pvalues_)
    # The monitor's record of two groups, one reloaded, merged as in one run.
    dynamics = [
        np.load(run / "dynamics.npz") for run in (tmp_path / "whole", resumed.out)
    ]
    np.testing.assert_array_equal(dynamics[0]["complexity"], dynamics[1]["complexity"])
    assert dynamics[0]["complexity"].shape[0] == 2


def test_dask_local_cluster_gives_the_same_results(baseline, tmp_path):
    pytest.importorskip("dask.distributed")
    result = run_experiment(
        tiny_config(), tmp_path, backend="dask", n_jobs=2, verbose=0
    )
    np.testing.assert_array_equal(result.landscapes, baseline.landscapes)


def test_existing_out_is_protected(baseline, tmp_path):
    with pytest.raises(ExperimentError, match="pass --resume to continue"):
        run_experiment(tiny_config(), baseline.out, verbose=0)
    with pytest.raises(ExperimentError, match="another configuration .*n_networks"):
        run_experiment(tiny_config(n_networks=3), baseline.out, resume=True, verbose=0)
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ExperimentError, match="holds no sklandscapes run"):
        run_experiment(tiny_config(), tmp_path, verbose=0)


def test_bad_configurations():
    with pytest.raises(ExperimentError, match="unknown experiment 'mnist'"):
        make_config("mnist")
    with pytest.raises(ExperimentError, match="unknown preset 'huge'"):
        make_config("synthetic", "huge")
    with pytest.raises(ExperimentError, match="thresholds must be increasing"):
        make_config("synthetic", thresholds=(0.9, 0.5))
    with pytest.raises(ExperimentError, match="thresholds must be increasing"):
        make_config("synthetic", thresholds=(0.5, 1.2))
    with pytest.raises(ExperimentError, match="unknown configuration field"):
        make_config("synthetic", n_layers=3)
    with pytest.raises(ExperimentError, match="digits data have 10 classes"):
        make_config("digits", widths=(64, 8, 2))
    with pytest.raises(ExperimentError, match="MNIST images have 784 features"):
        make_config("digits", mnist_path="x", widths=(64, 8, 10))
    with pytest.raises(ExperimentError, match="seed must be an int >= 0, got -1"):
        make_config("synthetic", seed=-1)
    with pytest.raises(ExperimentError, match="lr must be a positive number"):
        make_config("synthetic", lr=float("nan"))


def test_mnist_gets_784_inputs_unless_widths_are_given():
    assert make_config("digits", mnist_path="x").widths[0] == 784
    assert make_config("digits").widths[0] == 64
    assert make_config("digits", mnist_path="x", widths=(784, 5, 10)).widths == (
        784,
        5,
        10,
    )


def test_digits_experiment_on_local_mnist_files(tmp_path):
    # A tiny MNIST look-alike in the Keras .npz layout: class k is a bright
    # band at rows 2k..2k+3 of a noisy 28 x 28 image.
    rng = np.random.default_rng(0)

    def images(n):
        labels = rng.integers(0, 10, n)
        x = rng.integers(0, 60, size=(n, 28, 28))
        for i, k in enumerate(labels):
            x[i, 2 * k : 2 * k + 4] += 180
        return x.astype(np.uint8), labels.astype(np.uint8)

    (x_train, y_train), (x_test, y_test) = images(300), images(100)
    np.savez(
        tmp_path / "mnist.npz",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
    )
    config = make_config(
        "digits",
        mnist_path=str(tmp_path / "mnist.npz"),
        widths=(784, 16, 10),
        n_networks=2,
        thresholds=(0.5, 0.9),
        lr=1e-2,
        batch_size=32,
        max_epochs=60,
        n_inputs=80,
        n_subsamples=2,
        resolution=51,
        n_permutations=99,
    )
    result = run_experiment(config, tmp_path / "out", verbose=0)
    # 2 networks x 2 thresholds x 2 subsamples; input + hidden + logits layers.
    assert result.landscapes.shape[0] == 8
    assert result.shape[:2] == (3, 1)
    assert (tmp_path / "out" / "report.md").exists()


def test_missing_mnist_is_a_clear_error(tmp_path):
    config = make_config(
        "digits", mnist_path=str(tmp_path / "nowhere"), widths=(784, 10, 10)
    )
    with pytest.raises(ExperimentError, match="nowhere"):
        run_experiment(config, tmp_path / "out", verbose=0)


def test_unreachable_scheduler(tmp_path, monkeypatch):
    pytest.importorskip("dask.distributed")
    monkeypatch.setattr(_diagrams, "_SCHEDULER_TIMEOUT", "1s")
    with pytest.raises(ExperimentError, match="cannot reach the Dask scheduler"):
        with _diagrams.backend("dask", "tcp://127.0.0.1:9", None):
            pass


def test_config_round_trips_through_json():
    config = tiny_config()
    assert experiments.ExperimentConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize("preset", ["fast", "paper"])
def test_synthetic_presets_keep_the_input_layers_nine_holes(preset):
    """The nine nearly equal holes need nine levels: "auto" keeps >= 98%."""
    from sklandscapes import LandscapeVectorizer, RipsPersistence
    from sklandscapes.normalization import ActivationNormalizer

    config = make_config("synthetic", preset)
    batch = _data.load_data(config).batches[0].astype(np.float64)
    diagrams = RipsPersistence().fit_transform(
        ActivationNormalizer().fit_transform([batch])
    )
    vectorizer = LandscapeVectorizer(
        n_landscapes=config.n_landscapes,
        sample_range=config.sample_range,
        resolution=config.resolution,
    ).fit(diagrams)
    assert vectorizer.n_landscapes_ >= 9
    assert vectorizer.level_share_[0, 0] >= 0.98


# ------------------------------------------------- damaged and moved run folders

GROUP = "training/group0000.pt"
SNAPSHOT = "training/snapshots/group0000/network0001_threshold01.pt"
DIAGRAM = "diagrams/threshold1_network0000_subsample0.npz"


def copy_run(baseline, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(baseline.out, out)
    return out


def cut_in_half(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def empty(path):
    path.write_bytes(b"")


def flip_a_data_byte(path):
    """Flip the last data byte of the first zip member: the zip's CRC fails."""
    with zipfile.ZipFile(path) as archive:
        info = archive.infolist()[0]
    data = bytearray(path.read_bytes())
    # A local file header is 30 bytes, then the name and the extra field,
    # whose lengths are its last two 2-byte fields.
    name_length, extra_length = struct.unpack_from("<HH", data, info.header_offset + 26)
    start = info.header_offset + 30 + name_length + extra_length
    data[start + info.compress_size - 1] ^= 0xFF
    path.write_bytes(bytes(data))


def stages(config, out):
    """The training and diagram stages of a resumed run, without the report."""
    data = _data.load_data(config)
    training = _training.train(config, data.X, data.y, out, "cpu", 0)
    computed = _diagrams.compute_diagrams(
        config, training, batches=data.batches, out=out, n_jobs=None, device="cpu"
    )
    return training, computed.diagrams


def assert_same_diagrams(first, second):
    assert len(first) == len(second)
    for a, b in zip(first, second):
        for index in np.ndindex(a.shape):
            np.testing.assert_array_equal(a[index], b[index])


@pytest.mark.parametrize(
    "damage, error",
    [
        (cut_in_half, "BadZipFile: File is not a zip file"),
        (empty, "EOFError"),
        (flip_a_data_byte, "BadZipFile: Bad CRC-32"),
    ],
    ids=["cut-in-half", "empty", "flipped-byte"],
)
def test_damaged_diagram_file_is_reported_and_recomputed(
    baseline, tmp_path, damage, error
):
    out = copy_run(baseline, tmp_path)
    _, expected = stages(tiny_config(), baseline.out)
    damage(out / DIAGRAM)
    with pytest.warns(DamagedFileWarning, match=rf"{DIAGRAM}.*is damaged \({error}"):
        _, diagrams = stages(tiny_config(), out)
    assert_same_diagrams(diagrams, expected)
    assert _folder.load_intact(out / DIAGRAM, _folder.load_diagrams) is not None


@pytest.mark.parametrize("damage", [cut_in_half, empty], ids=["cut-in-half", "empty"])
def test_damaged_training_group_is_reported_and_retrained(baseline, tmp_path, damage):
    out = copy_run(baseline, tmp_path)
    expected = _training._load_group(out / GROUP)
    damage(out / GROUP)
    with pytest.warns(DamagedFileWarning, match=rf"{GROUP}.*is damaged"):
        training, _ = stages(tiny_config(), out)
    assert_same_training(training, expected)
    assert_same_training(_training._load_group(out / GROUP), expected)


@pytest.mark.parametrize(
    "damage", [cut_in_half, empty, flip_a_data_byte], ids=["cut", "empty", "flipped"]
)
def test_damaged_snapshot_is_reported_and_written_again(
    baseline, tmp_path, monkeypatch, damage
):
    import sklandscapes.nets
    from sklandscapes.nets import load_snapshot

    out = copy_run(baseline, tmp_path)
    expected = (out / SNAPSHOT).read_bytes()
    damage(out / SNAPSHOT)

    def no_training(*args, **kwargs):
        raise AssertionError("retrained")

    # The stored group holds the weights: the file is rewritten, not retrained.
    monkeypatch.setattr(sklandscapes.nets, "train_networks", no_training)
    with pytest.warns(DamagedFileWarning, match=rf"{SNAPSHOT}.*is damaged"):
        training, _ = stages(tiny_config(), out)
    weights = load_snapshot(out / SNAPSHOT).state_dict()
    for key, value in training.snapshots[1][1].state_dict().items():
        assert bool((weights[key] == value).all()), key
    assert len((out / SNAPSHOT).read_bytes()) == len(expected)


@pytest.mark.parametrize(
    "name",
    [
        "training/log.json",
        "training/snapshots/group0000/training_log.json",
        "training/snapshots/group0000/snapshots.jsonl",
    ],
)
def test_damaged_training_log_is_reported_and_written_again(baseline, tmp_path, name):
    out = copy_run(baseline, tmp_path)
    expected = (out / name).read_text()
    cut_in_half(out / name)
    with pytest.warns(DamagedFileWarning, match=rf"{name}.*is damaged"):
        stages(tiny_config(), out)
    assert (out / name).read_text() == expected


def test_damaged_config_is_a_one_line_error(baseline, tmp_path):
    out = copy_run(baseline, tmp_path)
    cut_in_half(out / "config.json")
    before = sorted(p.name for p in out.iterdir())
    with pytest.raises(
        ExperimentError,
        match=r"config.json' is damaged \(JSONDecodeError: .*\).*pass --force",
    ) as info:
        run_experiment(tiny_config(), out, resume=True, verbose=0)
    assert "\n" not in str(info.value)
    assert sorted(p.name for p in out.iterdir()) == before


def test_flipped_byte_in_landscapes_is_refused_then_computed_again(
    baseline, tmp_path, monkeypatch
):
    from sklandscapes.experiments import load_results

    out = copy_run(baseline, tmp_path)
    path = out / "landscapes.npy"
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x01  # a low bit of the last sample's last value
    path.write_bytes(bytes(data))
    last = len(baseline.landscapes) - 1
    # One chunk holds every row here: the message names them all.
    rows = rf"rows 0-{last} differ from their CRC-32 in landscapes\.crc\.json"
    with pytest.raises(ValueError, match=rf"landscapes\.npy' cannot be used: .*{rows}"):
        load_results(out)
    import sklandscapes.nets

    def no_training(*args, **kwargs):
        raise AssertionError("retrained")

    monkeypatch.setattr(sklandscapes.nets, "train_networks", no_training)
    with pytest.warns(
        DamagedFileWarning, match=rf"landscapes\.npy' is damaged .*{rows}"
    ):
        result = run_experiment(tiny_config(), out, resume=True, verbose=0)
    np.testing.assert_array_equal(result.landscapes, baseline.landscapes)
    before, after = load_results(baseline.out), load_results(out)
    for name in before:
        if name not in ("timings", "timing_history"):
            np.testing.assert_array_equal(after[name], before[name], err_msg=name)


def test_moved_and_damaged_folder_resumes_to_the_same_results(
    baseline, tmp_path, monkeypatch
):
    copy = copy_run(baseline, tmp_path)
    out = tmp_path / "elsewhere" / "moved"
    shutil.move(copy, out)
    # Nothing stored in the folder names the place where it was computed.
    for path in out.rglob("*"):
        if path.suffix in (".json", ".jsonl", ".md"):
            assert str(baseline.out) not in path.read_text(), path
    stored = _training._load_group(out / GROUP)
    assert (
        stored.paths[0][0] == "training/snapshots/group0000/network0000_threshold00.pt"
    )
    log = json.loads((out / "training" / "log.json").read_text())
    assert log[1]["snapshots"][1]["path"] == SNAPSHOT
    cut_in_half(out / DIAGRAM)
    cut_in_half(out / SNAPSHOT)
    import sklandscapes.nets

    def no_training(*args, **kwargs):
        raise AssertionError("retrained")

    monkeypatch.setattr(sklandscapes.nets, "train_networks", no_training)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run_experiment(tiny_config(), out, resume=True, verbose=0)
    damaged = sorted(
        str(w.message).split("'")[1]
        for w in caught
        if issubclass(w.category, DamagedFileWarning)
    )
    assert damaged == sorted(os.fspath(out / name) for name in (DIAGRAM, SNAPSHOT))
    np.testing.assert_array_equal(result.landscapes, baseline.landscapes)
    np.testing.assert_array_equal(result.test.pvalues_, baseline.test.pvalues_)


def test_training_interrupted_mid_group_resumes_bit_for_bit(
    baseline, tmp_path, monkeypatch
):
    import sklandscapes.nets._batched as batched

    expected = _training._load_group(baseline.out / GROUP)
    n_epochs = int(expected.n_epochs_trained.max())
    assert n_epochs >= 4  # else there is no middle to interrupt in
    monkeypatch.setattr(_training, "_CHECKPOINT_EVERY", 2)
    real = batched._accuracy
    seen = []

    def interrupt(weights, biases, X, y, indices, activation):
        # One call per epoch on the training rows, the widest indices.
        if indices.shape[1] == expected.train_indices.shape[1]:
            seen.append(1)
            if len(seen) == n_epochs:
                raise KeyboardInterrupt
        return real(weights, biases, X, y, indices, activation)

    monkeypatch.setattr(batched, "_accuracy", interrupt)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(tiny_config(), tmp_path, verbose=0)
    checkpoint = tmp_path / "training" / "group0000.checkpoint.pt"
    assert checkpoint.exists() and not (tmp_path / GROUP).exists()

    monkeypatch.setattr(batched, "_accuracy", real)
    resumed_from = []
    real_stacked = batched._train_stacked

    def spy(*args, **kwargs):
        resumed_from.append(kwargs["resume"]["epoch"])
        return real_stacked(*args, **kwargs)

    monkeypatch.setattr(batched, "_train_stacked", spy)
    # A snapshot taken before the checkpoint is not taken again, only checked.
    first = tmp_path / "training/snapshots/group0000/network0000_threshold00.pt"
    cut_in_half(first)
    with pytest.warns(DamagedFileWarning, match="network0000_threshold00.pt' is dam"):
        result = run_experiment(tiny_config(), tmp_path, resume=True, verbose=0)
    assert resumed_from == [2 * ((n_epochs - 1) // 2)]
    assert (
        first.read_bytes() == (baseline.out / first.relative_to(tmp_path)).read_bytes()
    )
    assert not checkpoint.exists()
    assert_same_training(_training._load_group(tmp_path / GROUP), expected)
    np.testing.assert_array_equal(result.landscapes, baseline.landscapes)
    np.testing.assert_array_equal(result.norms, baseline.norms)
    np.testing.assert_array_equal(result.test.pvalues_, baseline.test.pvalues_)


def test_group_with_absolute_paths_of_another_machine_maps_to_the_folder(
    baseline, tmp_path
):
    import dataclasses

    import torch

    out = copy_run(baseline, tmp_path)
    group = _training._load_group(out / GROUP)
    elsewhere = tmp_path / "other-machine"
    old = dataclasses.replace(
        group,
        paths=[
            [None if p is None else str(elsewhere / p) for p in row]
            for row in group.paths
        ],
    )
    torch.save(old, out / GROUP)
    cut_in_half(out / SNAPSHOT)
    with pytest.warns(DamagedFileWarning, match="is damaged"):
        training, _ = stages(tiny_config(), out)
    assert training.paths[1][1] == str(out / SNAPSHOT)
    assert not elsewhere.exists()
    assert (out / SNAPSHOT).stat().st_size > 0


def test_missed_thresholds_are_numbered_across_groups(tmp_path):
    """One warning, networks numbered 0..n-1 as in log.json, not per group."""
    from sklandscapes.nets import ThresholdNotReachedWarning

    config = tiny_config(
        n_networks=3, networks_per_group=2, thresholds=(0.6, 0.999), max_epochs=2
    )
    data = _data.load_data(config)
    with pytest.warns(ThresholdNotReachedWarning) as caught:
        _training.train(config, data.X, data.y, tmp_path, "cpu", 0)
    missed = [w for w in caught if w.category is ThresholdNotReachedWarning]
    assert len(missed) == 1
    assert "3 of 3 networks" in str(missed[0].message)
    assert "(networks [0, 1, 2], numbered as in training/log.json)" in str(
        missed[0].message
    )


def test_diagrams_computed_once_equal_the_pipeline_on_every_sample(baseline, tmp_path):
    """Shared input layer and shared same-epoch snapshots change no diagram."""
    import dataclasses

    from sklandscapes import ActivationNormalizer, RipsPersistence
    from sklandscapes.activations import ActivationExtractor

    config = tiny_config()
    data = _data.load_data(config)
    training = _training.train(config, data.X, data.y, baseline.out, "cpu", 0)
    # Network 0 crosses both thresholds in one epoch: its two snapshots are one.
    epochs = training.snapshot_epoch.copy()
    epochs[0, 1] = epochs[0, 0]
    snapshots = [list(row) for row in training.snapshots]
    snapshots[1][0] = snapshots[0][0]
    training = dataclasses.replace(training, snapshot_epoch=epochs, snapshots=snapshots)
    (tmp_path / "diagrams").mkdir()
    computed = _diagrams.compute_diagrams(
        config, training, batches=data.batches, out=tmp_path, n_jobs=None, device="cpu"
    )
    keys, diagrams, work = computed.keys, computed.diagrams, computed.work.counts
    n_layers = diagrams[0].shape[0]
    owners = {_diagrams.shared_snapshot(training, key) for key in keys}
    subsamples = {s for _, _, s in keys}
    assert _diagrams.shared_snapshot(training, (1, 0, 0)) == (0, 0, 0)
    assert work == {
        "samples": len(keys),
        "clouds": len(subsamples) + len(owners) * (n_layers - 1),
        "input_reused": len(owners) - len(subsamples),
        "snapshot_reused": len(keys) - len(owners),
    }
    # The reference: every sample through the whole pipeline on its own.
    normalizer = ActivationNormalizer(
        method=config.method,
        center=_diagrams.layer_centering(config, training, data.batches),
    )
    rips = RipsPersistence(homology_dimensions=config.homology_dimensions)
    for (j, k, s), sample in zip(keys, diagrams):
        clouds = ActivationExtractor(inputs=data.batches[s]).transform(
            [training.snapshots[j][k]]
        )
        expected = rips.fit_transform(normalizer.fit_transform(clouds))[0]
        assert_same_diagrams([sample], [expected])


def test_progress_counts_samples_stored_by_earlier_work_once(
    baseline, tmp_path, capsys
):
    # As after the process that computes diagrams during training: samples
    # stored by earlier work are not in todo, and not counted again.
    config = tiny_config()
    data = _data.load_data(config)
    training = _training.train(config, data.X, data.y, baseline.out, "cpu", 0)
    (tmp_path / "diagrams").mkdir()
    settings = dict(batches=data.batches, out=tmp_path, n_jobs=None, device="cpu")
    keys = _diagrams.compute_diagrams(config, training, **settings).keys
    for key in keys[: len(keys) // 2]:
        _folder.diagram_path(tmp_path, key).unlink()
    capsys.readouterr()
    _diagrams.compute_diagrams(config, training, verbose=1, **settings)
    bar = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()[-1]
    assert f" {len(keys)}/{len(keys)} " in bar


def test_monitored_run_records_what_the_run_measures(baseline):
    """--monitor-every: the curves at each snapshot equal the run's own norms."""
    result, tmp_path, config = baseline, baseline.out, baseline.config
    batch = _data.load_data(config).batches[0]
    # The whole batch is the monitor's batch here, in the same order.
    assert len(batch) <= config.monitor_points
    stored = np.load(tmp_path / "dynamics.npz")
    assert (tmp_path / "dynamics.png").stat().st_size > 20_000
    assert "dynamics.png" in (tmp_path / "report.md").read_text()
    epochs, complexity = stored["epochs"], stored["complexity"]
    assert stored["layer_names"].tolist()[0] == "input"
    log = json.loads((tmp_path / "training" / "log.json").read_text())
    compared = 0
    for i, (threshold, network) in enumerate(zip(result.thresholds, result.networks)):
        snapshot = next(
            s for s in log[network]["snapshots"] if s and s["threshold"] == threshold
        )
        column = list(epochs).index(snapshot["epoch"])
        # Same weights, batch and estimators; the sum over pairs runs in the
        # same order, so equal to rounding (rtol one ulp-ish, 1e-12).
        np.testing.assert_allclose(
            complexity[network, column], result.norms[i], rtol=1e-12
        )
        compared += 1
    assert compared == len(result.norms)


def test_bad_monitor_configuration():
    with pytest.raises(ExperimentError, match="monitor_every must be an int >= 1"):
        make_config("synthetic", monitor_every=0)
    with pytest.raises(ExperimentError, match="monitor_points must be an int >= 1"):
        make_config("synthetic", monitor_points=0)


def test_samples_in_threads_record_every_result_stop_and_raise():
    """The local diagram stage's thread pool: every item is recorded once, in
    this thread; a stop ends the queue after the tasks started; an error in a
    task reaches the caller."""
    import threading

    def task(item):
        if item == "bad":
            raise ValueError("sample 3: broken")
        return item, 0, 1, (0.5, 1.0)

    recorded, timings = [], {"extraction": 0.0, "persistence": 0.0}
    stopped = _diagrams._run_in_threads(
        range(20), 2, None, task, lambda done: recorded.append(done[0]), timings
    )
    assert not stopped and sorted(recorded) == list(range(20))
    assert timings["extraction"] == pytest.approx(20 * 0.5 / 2)
    stop, recorded = threading.Event(), []

    def stop_after_three(done):
        recorded.append(done[0])
        if len(recorded) == 3:
            stop.set()

    stopped = _diagrams._run_in_threads(
        range(100), 2, stop, task, stop_after_three, timings
    )
    assert stopped and 3 <= len(recorded) <= 3 + 2 * 2
    with pytest.raises(ValueError, match="sample 3: broken"):
        _diagrams._run_in_threads(
            [1, 2, "bad", 4], 2, None, task, lambda done: None, timings
        )


def test_background_diagrams_report_what_stopped_them(tmp_path, capsys, monkeypatch):
    """The process that computes diagrams during training always leaves a
    report: its work when told to stop, the error that stopped it otherwise;
    the run adds the first and reports the second in one line."""
    import io
    import pickle
    import threading

    from sklandscapes.experiments import _background

    def run_job(config, stop):
        job = tmp_path / f"job{len(list(tmp_path.iterdir()))}"
        job.mkdir()
        settings = dict(config=config, batches=[], out=tmp_path, device="cpu")
        settings["poll"] = 0.01
        (job / _background.JOB_FILE).write_bytes(pickle.dumps(settings))
        _background.main(job, stop)
        assert not (job / _background.JOB_FILE).exists()  # read, then deleted
        return job

    stopped = threading.Event()
    stopped.set()
    job = run_job(tiny_config(), stopped)
    report = json.loads((job / _background.RESULT_FILE).read_text())
    assert report["error"] is None and report["work"] == {}
    # By default it stops when its standard input ends, which is how the
    # parent stops it, and what happens when the parent dies.
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"")))
    job = run_job(tiny_config(), None)
    assert json.loads((job / _background.RESULT_FILE).read_text())["work"] == {}
    job = run_job(None, threading.Event())  # no configuration: fails at once
    report = json.loads((job / _background.RESULT_FILE).read_text())
    assert report["error"].startswith("AttributeError")
    timings, work = {"persistence": 1.0}, {"samples": 2}
    timings, work = _diagrams.add_work(
        timings, work, _background._collect_background(job, verbose=1)
    )
    assert timings == {"persistence": 1.0, "extraction": 0.0}
    assert work["samples"] == 2 and work["during_training"] == 0
    assert "diagrams during training stopped (AttributeError" in capsys.readouterr().err
    (job / _background.RESULT_FILE).unlink()
    _background._collect_background(job, verbose=1)
    assert "ended without a report" in capsys.readouterr().err


@pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")
def test_background_process_ends_when_its_parent_is_killed(tmp_path):
    """A run killed outright (SIGKILL, out of memory) leaves no process behind:
    the child sees its standard input end and stops, and reports."""
    import signal
    import subprocess

    from sklandscapes.experiments import _background

    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import pathlib, sys, time; "
            "from sklandscapes.experiments import _background, make_config; "
            "settings = dict(config=make_config('synthetic'), batches=[], "
            "out=pathlib.Path(sys.argv[1]), device='cpu', poll=0.05); "
            "job, child = _background._start_background(settings); "
            "print(child.pid, job, flush=True); time.sleep(600)",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    pid, job = parent.stdout.readline().split()
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    result = Path(job) / _background.RESULT_FILE
    deadline = time.monotonic() + 120  # the child may still be importing
    while time.monotonic() < deadline and not result.exists():
        time.sleep(0.1)
    assert result.exists(), "the child did not stop when its parent was killed"
    assert json.loads(result.read_text())["error"] is None
    assert not (Path(job) / _background.JOB_FILE).exists()
    status = Path(f"/proc/{pid}/status")

    def running():
        # A zombie has ended; whether it is reaped depends on the init process.
        try:
            return "State:\tZ" not in status.read_text()
        except FileNotFoundError:
            return False

    while status.parent.parent.exists() and running():
        assert time.monotonic() < deadline, f"process {pid} still runs"
        time.sleep(0.1)
    shutil.rmtree(job, ignore_errors=True)


def test_diagrams_computed_during_training_are_the_same(
    baseline, tmp_path, monkeypatch
):
    """With a spare core, snapshots' diagrams are computed while training runs,
    in a process of their own."""
    monkeypatch.setattr(_background, "_POLL_SECONDS", 0.05)
    original = _training.train
    waited = []

    def train_until_a_diagram_is_stored(config, X, y, out, *args, **kwargs):
        # Training this small ends before the process has started: hold the
        # end of training until it has stored a diagram (or a minute passed).
        training = original(config, X, y, out, *args, **kwargs)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any((out / "diagrams").glob("*.npz")):
            time.sleep(0.05)
        waited.append(any((out / "diagrams").glob("*.npz")))
        return training

    monkeypatch.setattr(_training, "train", train_until_a_diagram_is_stored)
    result = run_experiment(tiny_config(), tmp_path, n_jobs=2, verbose=0)
    assert waited == [True], "nothing was computed during training"
    work = result.timing_history[-1]["work"]
    assert work["during_training"] >= 1
    report = (tmp_path / "report.md").read_text()
    assert f"{work['during_training']} samples' diagrams were computed while" in report
    assert work["samples"] == len(baseline.thresholds)  # each sample stored once
    assert not list(tmp_path.glob("**/*.tmp"))
    for path in sorted((baseline.out / "diagrams").glob("*.npz")):
        assert_same_diagrams(
            [_folder.load_diagrams(path)],
            [_folder.load_diagrams(tmp_path / "diagrams" / path.name)],
        )
    np.testing.assert_array_equal(result.landscapes, baseline.landscapes)
    np.testing.assert_array_equal(result.test.pvalues_, baseline.test.pvalues_)


def test_share_of_networks_growing_averages_each_networks_subsamples():
    from sklandscapes.experiments._observations import _share_growing

    # Network 0: subsample totals 1 and 3 at 0.5 (mean 2), 2.5 and 2 at 0.9
    # (mean 2.25): it grows, though its last subsample alone shrinks (3 > 2).
    # Network 1 shrinks on average (4 and 4 against 1 and 1).
    total = np.array([1.0, 3.0, 4.0, 4.0, 2.5, 2.0, 1.0, 1.0])
    thresholds = np.repeat([0.5, 0.9], 4)
    networks = np.tile([0, 0, 1, 1], 2)
    assert _share_growing(total, thresholds, networks, 0.5, 0.9) == 0.5


def test_missed_thresholds_warn_at_the_callers_line(tmp_path):
    from sklandscapes.nets import ThresholdNotReachedWarning

    config = tiny_config(thresholds=(0.6, 0.7, 0.999))
    with pytest.warns(ThresholdNotReachedWarning) as record:
        run_experiment(config, tmp_path, verbose=0)
    missed = [w for w in record if w.category is ThresholdNotReachedWarning]
    assert len(missed) == 1
    assert missed[0].filename == __file__


def test_resume_without_a_run_is_refused_before_anything_is_written(tmp_path):
    for out in (tmp_path / "typo_folder", tmp_path):
        with pytest.raises(ExperimentError, match="nothing to resume in"):
            run_experiment(tiny_config(), out, resume=True, verbose=0)
    assert not list(tmp_path.iterdir())


# Holds a run folder's lock in another process until killed.
_HOLDER = """
import sys, time
from sklandscapes.experiments import _folder
with _folder.locked(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(600)
"""


@contextlib.contextmanager
def _lock_held_by_another_process(out):
    repository = Path(__file__).resolve().parents[1]
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(out)],
        cwd=repository,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield holder
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()


def test_a_folder_in_use_by_another_run_is_refused_until_that_run_dies(
    baseline, tmp_path
):
    out = tmp_path / "run"
    shutil.copytree(baseline.out, out)
    stored = sorted(p.relative_to(out) for p in out.rglob("*"))
    with _lock_held_by_another_process(out) as holder:
        # --force in one terminal while another runs: refused, nothing deleted.
        for options in (dict(force=True), dict(resume=True)):
            with pytest.raises(
                ExperimentError,
                match=rf"'{re.escape(str(out))}' is in use by another run "
                rf"\(process {holder.pid}\)",
            ):
                run_experiment(tiny_config(), out, verbose=0, **options)
        assert sorted(p.relative_to(out) for p in out.rglob("*")) == stored
    # Killed (SIGKILL: no clean-up ran), the holder leaves nothing stuck.
    assert holder.returncode != 0
    resumed = run_experiment(tiny_config(), out, resume=True, verbose=0)
    np.testing.assert_array_equal(resumed.landscapes, baseline.landscapes)
    assert (out / "run.lock").read_text().strip() == str(os.getpid())


def test_a_fresh_folder_locked_by_a_killed_run_is_used(baseline, tmp_path):
    out = tmp_path / "fresh"
    with _lock_held_by_another_process(out):
        pass
    assert [p.name for p in out.iterdir()] == ["run.lock"]
    result = run_experiment(tiny_config(), out, verbose=0)
    np.testing.assert_array_equal(result.landscapes, baseline.landscapes)
