import json
import os
import pickle
import warnings

import numpy as np
import pytest
import torch
from conftest import assert_same_training
from sklearn.base import clone
from skorch import NeuralNetClassifier
from skorch.callbacks import Callback
from torch import nn

from sklandscapes.nets import (
    MLP,
    AccuracyThresholdSnapshots,
    ThresholdNotReachedWarning,
    TrainingResult,
    load_snapshot,
    load_snapshot_metadata,
    make_mlp_classifier,
    save_snapshot,
    train_networks,
)
from sklandscapes.nets._batched import _initial_stacks, _train_stacked

PAPER_WIDTHS = (2,) + (15,) * 10 + (2,)


def two_blobs(rng, n_points=64):
    """Two well separated classes in the plane: any small MLP learns them."""
    y = np.arange(n_points) % 2
    X = rng.normal(scale=0.3, size=(n_points, 2)) + np.where(y[:, None], 1.5, -1.5)
    return X.astype(np.float32), y


def rings(rng, n_points=200):
    """A disk inside an annulus: not linearly separable, learned over epochs."""
    y = np.arange(n_points) % 2
    radius = np.where(y == 1, 1.0, 0.4) + rng.normal(scale=0.08, size=n_points)
    angle = rng.uniform(0, 2 * np.pi, n_points)
    X = np.c_[radius * np.cos(angle), radius * np.sin(angle)]
    return X.astype(np.float32), y


def tmp_files(directory):
    return [name for name in os.listdir(directory) if name.endswith(".tmp")]


# --------------------------------------------------------------------------- MLP


def test_mlp_structure_of_the_paper_network():
    net = MLP(PAPER_WIDTHS)
    linears = [m for m in net.layers if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == list(
        zip(PAPER_WIDTHS, PAPER_WIDTHS[1:])
    )
    # Linear, ReLU alternate; the last layer is affine only (logits).
    kinds = [type(m) for m in net.layers]
    assert kinds == [nn.Linear, nn.ReLU] * 10 + [nn.Linear]
    assert net.depth == 11
    assert len(net.layer_modules) == 11
    assert all(isinstance(m, nn.ReLU) for m in net.layer_modules[:-1])
    assert net.layer_modules[-1] is net.layers[-1]
    assert net(torch.zeros(7, 2)).shape == (7, 2)


def test_mlp_hooks_see_every_layer():
    net = MLP((3, 5, 4, 2), random_state=0)
    seen = []
    handles = [
        m.register_forward_hook(lambda m, i, o: seen.append(tuple(o.shape)))
        for m in net.layer_modules
    ]
    net(torch.zeros(6, 3))
    for handle in handles:
        handle.remove()
    assert seen == [(6, 5), (6, 4), (6, 2)]


@pytest.mark.parametrize(
    "activation, expected",
    [
        ("relu", nn.ReLU),
        ("tanh", nn.Tanh),
        ("sigmoid", nn.Sigmoid),
        ("leaky_relu", nn.LeakyReLU),
        ("gelu", nn.GELU),
        (nn.SiLU, nn.SiLU),
    ],
)
def test_mlp_activations(activation, expected):
    net = MLP((2, 4, 4, 2), activation=activation)
    assert [type(m) for m in net.layers[1::2]] == [expected, expected]


def test_mlp_random_state_is_local_and_follows_linear_init():
    global_state = torch.get_rng_state()
    first = MLP((4, 30, 2), random_state=3)
    assert torch.equal(torch.get_rng_state(), global_state)
    second = MLP((4, 30, 2), random_state=3)
    other = MLP((4, 30, 2), random_state=4)
    for a, b in zip(first.parameters(), second.parameters()):
        assert torch.equal(a, b)
    assert not torch.equal(first.layers[0].weight, other.layers[0].weight)
    # nn.Linear's default: uniform on [-1/sqrt(fan_in), 1/sqrt(fan_in)].
    for linear, fan_in in ((first.layers[0], 4), (first.layers[2], 30)):
        bound = fan_in**-0.5
        assert linear.bias.abs().max() <= bound
        assert linear.weight.abs().max() <= bound
        # 60 or more uniform draws: the largest is near the bound (P > 1 - 1e-5).
        assert linear.weight.abs().max() > 0.8 * bound


@pytest.mark.parametrize(
    "widths, match",
    [
        ((2,), "at least 2 entries"),
        ((2, 0, 2), r"positive ints.*bad entries: \[0\]"),
        ((2, 3.5, 2), "positive ints"),
        ((2, True, 2), "positive ints"),
        (5, "sequence of positive ints"),
    ],
)
def test_mlp_rejects_bad_widths(widths, match):
    with pytest.raises(ValueError, match=match):
        MLP(widths)


def test_mlp_rejects_unknown_activation():
    with pytest.raises(ValueError, match=r"one of \['gelu', 'leaky_relu', 'relu'"):
        MLP((2, 3, 2), activation="softplus")
    with pytest.raises(ValueError, match="nn.Module subclass"):
        MLP((2, 3, 2), activation=nn.ReLU())


# ----------------------------------------------------------------------- factory


def test_factory_fits_a_separable_problem(rng):
    X, y = two_blobs(rng)
    net = make_mlp_classifier(
        (2, 8, 2),
        lr=0.05,
        max_epochs=15,
        train_split=None,
        random_state=0,
        verbose=0,
        device="cpu",
    )
    assert isinstance(net, NeuralNetClassifier)
    assert net.module is MLP and net.optimizer is torch.optim.Adam
    assert net.criterion is nn.CrossEntropyLoss
    net.fit(X, y)
    assert net.history[-1, "train_acc"] == 1.0
    np.testing.assert_array_equal(net.predict(X), y)
    np.testing.assert_allclose(net.predict_proba(X).sum(axis=1), 1.0, rtol=1e-6)


def test_factory_defaults():
    net = make_mlp_classifier(PAPER_WIDTHS)
    assert net.lr == 1e-3 and net.batch_size == 128
    assert net.device == ("cuda" if torch.cuda.is_available() else "cpu")
    assert net.module__widths == PAPER_WIDTHS
    assert net.iterator_train__shuffle is True


def test_factory_random_state_reproduces_fits(rng):
    X, y = rings(rng, 100)
    kwargs = dict(
        max_epochs=3, batch_size=16, train_split=None, verbose=0, device="cpu"
    )
    fits = []
    # Different global seeds: the fits must not depend on torch's global state.
    with torch.random.fork_rng():
        for global_seed, seed in ((10, 1), (20, 1), (10, 2)):
            torch.manual_seed(global_seed)
            net = make_mlp_classifier((2, 8, 2), random_state=seed, **kwargs)
            fits.append(net.fit(X, y))
    weights = [f.module_.layers[0].weight for f in fits]
    assert torch.equal(weights[0], weights[1])
    assert not torch.equal(weights[0], weights[2])


def test_train_acc_is_accuracy_after_the_epoch_on_the_training_set(rng):
    X, y = rings(rng, 120)
    net = make_mlp_classifier(
        (2, 8, 2),
        max_epochs=2,
        batch_size=16,
        train_split=None,
        random_state=0,
        verbose=0,
        device="cpu",
    ).fit(X, y)
    assert net.history[-1, "train_acc"] == np.mean(net.predict(X) == y)


# ---------------------------------------------------------------------- callback


class ScriptedAccuracy(Callback):
    """Records a given training accuracy per epoch, and the weights then."""

    def __init__(self, accuracies):
        self.accuracies = accuracies

    def initialize(self):
        self.weights_ = []
        return self

    def on_epoch_end(self, net, **kwargs):
        net.history.record("train_acc", self.accuracies[len(net.history) - 1])
        self.weights_.append(net.module_.layers[0].weight.detach().clone())


class FailAtEpoch(Callback):
    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_begin(self, net, **kwargs):
        if len(net.history) == self.epoch:
            raise RuntimeError("simulated crash")


def scripted_net(accuracies, snapshots, *extra, max_epochs=20):
    return NeuralNetClassifier(
        MLP,
        module__widths=(2, 4, 2),
        module__random_state=0,
        criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=0.01,
        max_epochs=max_epochs,
        batch_size=16,
        train_split=None,
        verbose=0,
        callbacks=[("script", ScriptedAccuracy(accuracies)), snapshots, *extra],
    )


def test_callback_snapshots_first_crossings_and_stops(rng):
    X, y = rings(rng, 64)
    accuracies = [0.3, 0.55, 0.5, 0.8, 0.97, 0.99, 1.0, 1.0]
    snapshots = AccuracyThresholdSnapshots((0.5, 0.7, 0.75, 0.95))
    net = scripted_net(accuracies, snapshots).fit(X, y)
    got = [(s.threshold, s.accuracy, s.epoch) for s in snapshots.snapshots_]
    # 0.7 and 0.75 are both first reached in epoch 4: two snapshots of it.
    assert got == [(0.5, 0.55, 2), (0.7, 0.8, 4), (0.75, 0.8, 4), (0.95, 0.97, 5)]
    assert len(net.history) == 5  # stopped after the last threshold
    recorded = dict(net.callbacks_)["script"].weights_  # weights per epoch
    for snapshot in snapshots.snapshots_:
        assert torch.equal(
            snapshot.state_dict["layers.0.weight"], recorded[snapshot.epoch - 1]
        )
        assert snapshot.path is None
    # A copy, not a view of the live weights.
    assert snapshots.snapshots_[0].state_dict["layers.0.weight"].data_ptr() != (
        net.module_.layers[0].weight.data_ptr()
    )


def test_callback_with_real_training(rng):
    X, y = two_blobs(rng)
    snapshots = AccuracyThresholdSnapshots((0.9, 1.0))
    net = make_mlp_classifier(
        (2, 8, 2),
        lr=0.05,
        max_epochs=100,
        train_split=None,
        random_state=0,
        verbose=0,
        device="cpu",
        callbacks=[snapshots],
    ).fit(X, y)
    assert [s.threshold for s in snapshots.snapshots_] == [0.9, 1.0]
    assert len(net.history) == snapshots.snapshots_[-1].epoch < 100
    for s in snapshots.snapshots_:
        assert s.accuracy == net.history[s.epoch - 1, "train_acc"] >= s.threshold


def test_callback_writes_snapshots_atomically(rng, tmp_path):
    X, y = rings(rng, 64)
    snapshots = AccuracyThresholdSnapshots((0.5, 0.9), directory=tmp_path / "snaps")
    net = scripted_net([0.6, 0.7, 0.95], snapshots).fit(X, y)
    directory = tmp_path / "snaps"
    assert sorted(os.listdir(directory)) == [
        "snapshot_00.pt",
        "snapshot_01.pt",
        "snapshots.jsonl",
    ]
    lines = (directory / "snapshots.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [
        dict(threshold=0.5, accuracy=0.6, epoch=1, file="snapshot_00.pt"),
        dict(threshold=0.9, accuracy=0.95, epoch=3, file="snapshot_01.pt"),
    ]
    module = load_snapshot(directory / "snapshot_01.pt")
    assert module.widths == (2, 4, 2)
    for key, value in module.state_dict().items():
        assert torch.equal(value, net.module_.state_dict()[key])
    meta = load_snapshot_metadata(directory / "snapshot_00.pt")
    assert (meta["threshold"], meta["accuracy"], meta["epoch"]) == (0.5, 0.6, 1)
    assert meta["module_kwargs"] == {"widths": [2, 4, 2], "activation": "relu"}


def test_callback_keeps_snapshots_of_an_interrupted_run(rng, tmp_path):
    X, y = rings(rng, 64)
    snapshots = AccuracyThresholdSnapshots((0.5, 0.6, 0.9), directory=tmp_path)
    net = scripted_net([0.55, 0.65, 0.7, 0.95], snapshots, FailAtEpoch(3))
    with pytest.raises(RuntimeError, match="simulated crash"):
        net.fit(X, y)
    assert [s.epoch for s in snapshots.snapshots_] == [1, 2]
    assert sorted(os.listdir(tmp_path)) == [
        "snapshot_00.pt",
        "snapshot_01.pt",
        "snapshots.jsonl",
    ]
    lines = (tmp_path / "snapshots.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]
    assert load_snapshot_metadata(tmp_path / "snapshot_01.pt")["epoch"] == 2


@pytest.mark.parametrize(
    "thresholds, match",
    [
        ((0.0, 0.5), r"in \(0, 1\]"),
        ((0.5, 1.2), r"in \(0, 1\]"),
        ((0.5, 0.5), "strictly increasing"),
        ((0.9, 0.5), "strictly increasing"),
        ((), "non-empty"),
        ("high", "non-empty 1-D sequence"),
    ],
)
def test_callback_rejects_bad_thresholds(rng, thresholds, match):
    X, y = two_blobs(rng, 16)
    net = scripted_net([1.0], AccuracyThresholdSnapshots(thresholds))
    with pytest.raises(ValueError, match=match):
        net.fit(X, y)


def test_callback_needs_the_monitored_accuracy(rng):
    X, y = two_blobs(rng, 16)
    net = make_mlp_classifier(
        (2, 4, 2),
        max_epochs=1,
        verbose=0,
        device="cpu",
        callbacks=[AccuracyThresholdSnapshots((0.5,), monitor="my_acc")],
    )
    with pytest.raises(ValueError, match="found no 'my_acc' in the history"):
        net.fit(X, y)


def test_net_with_callback_clones_and_pickles(rng):
    X, y = two_blobs(rng)
    net = make_mlp_classifier(
        (2, 8, 2),
        lr=0.05,
        max_epochs=50,
        train_split=None,
        random_state=0,
        verbose=0,
        device="cpu",
        callbacks=[AccuracyThresholdSnapshots((0.9, 1.0))],
    )
    copy = clone(net)
    assert copy.callbacks[1].thresholds == (0.9, 1.0)
    assert copy.callbacks[1] is not net.callbacks[1]
    copy.fit(X, y)
    restored = pickle.loads(pickle.dumps(copy))
    fitted = dict(restored.callbacks_)["AccuracyThresholdSnapshots"]
    assert [s.threshold for s in fitted.snapshots_] == [0.9, 1.0]
    np.testing.assert_array_equal(restored.predict(X), copy.predict(X))
    # The template was not fitted through its clone.
    assert not hasattr(net.callbacks[1], "snapshots_")


# --------------------------------------------------------------- snapshot files


def test_snapshot_round_trip(tmp_path):
    module = MLP((3, 6, 6, 2), activation="tanh", random_state=0)
    path = tmp_path / "net.pt"
    save_snapshot(module, path, threshold=0.8, accuracy=0.85, epoch=7)
    assert tmp_files(tmp_path) == []
    loaded = load_snapshot(path)
    assert isinstance(loaded, MLP) and not loaded.training
    assert (loaded.widths, loaded.activation) == ((3, 6, 6, 2), "tanh")
    x = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    assert torch.equal(loaded(x), module(x))
    payload = torch.load(path, weights_only=True)
    assert payload["format"] == "sklandscapes-snapshot" and payload["version"] == 1
    assert payload["module_class"] == "MLP"
    assert (payload["threshold"], payload["accuracy"], payload["epoch"]) == (
        0.8,
        0.85,
        7,
    )


def test_load_snapshot_rejects_other_files(tmp_path):
    missing = tmp_path / "missing.pt"
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_snapshot(missing)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ValueError, match=r"notes.txt.*not a sklandscapes snapshot"):
        load_snapshot(text)
    other = tmp_path / "weights.pt"
    torch.save(MLP((2, 3, 2), random_state=0).state_dict(), other)
    with pytest.raises(ValueError, match=r"weights.pt.*format='sklandscapes-snapshot'"):
        load_snapshot(other)
    future = tmp_path / "future.pt"
    torch.save(dict(format="sklandscapes-snapshot", version=2), future)
    with pytest.raises(ValueError, match="version 2"):
        load_snapshot(future)


def test_save_snapshot_rejects_what_it_cannot_load(tmp_path):
    with pytest.raises(ValueError, match="saves sklandscapes.nets.MLP"):
        save_snapshot(nn.Linear(2, 2), tmp_path / "x.pt")
    with pytest.raises(ValueError, match="named activation"):
        save_snapshot(MLP((2, 3, 2), activation=nn.SiLU), tmp_path / "x.pt")
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------- train_networks


def test_train_networks_result(rng):
    X, y = rings(rng, 160)
    result = train_networks(
        X,
        y,
        3,
        (2, 16, 16, 2),
        (0.6, 0.8),
        lr=0.02,
        batch_size=16,
        max_epochs=60,
        random_state=0,
        device="cpu",
    )
    assert isinstance(result, TrainingResult)
    assert result.reached.all()
    assert result.train_indices.shape == (3, 128)
    assert result.test_indices.shape == (3, 32)
    for train, test in zip(result.train_indices, result.test_indices):
        assert sorted(np.r_[train, test]) == list(range(160))
        # Stratified split: the classes keep their proportions.
        assert y[test].mean() == 0.5
    n_epochs = result.train_accuracy.shape[1]
    assert n_epochs == result.n_epochs_trained.max() <= 60
    for k in range(3):
        epochs = result.snapshot_epoch[k]
        assert result.n_epochs_trained[k] == epochs[-1]
        history = result.train_accuracy[k]
        assert np.isnan(history[epochs[-1] :]).all()
        for j, threshold in enumerate(result.thresholds):
            # First epoch whose training accuracy reaches the threshold.
            assert history[epochs[j] - 1] == result.snapshot_train_accuracy[k, j]
            assert history[epochs[j] - 1] >= threshold
            assert (history[: epochs[j] - 1] < threshold).all()
            module = result.snapshots[j][k]
            assert isinstance(module, MLP) and module.widths == (2, 16, 16, 2)
            train = result.train_indices[k]
            with torch.no_grad():
                predicted = module(torch.as_tensor(X[train])).argmax(1).numpy()
            assert (
                np.mean(predicted == y[train]) == result.snapshot_train_accuracy[k, j]
            )
            test = result.test_indices[k]
            with torch.no_grad():
                predicted = module(torch.as_tensor(X[test])).argmax(1).numpy()
            assert np.mean(predicted == y[test]) == result.snapshot_test_accuracy[k, j]
    assert len(result.networks_at(0.8)) == 3
    log = result.log
    assert [entry["network"] for entry in log] == [0, 1, 2]
    assert log[1]["snapshots"][0]["epoch"] == result.snapshot_epoch[1, 0]
    assert log[1]["epochs"] == len(log[1]["train_accuracy"])
    assert all(entry["reached_all"] for entry in log)


def test_train_networks_is_deterministic_and_networks_differ(rng):
    X, y = rings(rng, 80)
    kwargs = dict(lr=0.01, batch_size=16, max_epochs=3, random_state=7, device="cpu")
    with pytest.warns(ThresholdNotReachedWarning):
        first = train_networks(X, y, 3, (2, 8, 2), (1.0,), **kwargs)
    with pytest.warns(ThresholdNotReachedWarning):
        again = train_networks(X, y, 3, (2, 8, 2), (1.0,), **kwargs)
    np.testing.assert_array_equal(first.train_accuracy, again.train_accuracy)
    np.testing.assert_array_equal(first.train_indices, again.train_indices)
    assert len(set(first.seeds.tolist())) == 3
    assert len({tuple(t) for t in first.test_indices}) == 3
    # Network k starts as MLP(widths, random_state=seeds[k]).
    generators = [torch.Generator().manual_seed(int(s)) for s in first.seeds]
    stacks = _initial_stacks((2, 8, 2), generators)
    for k, seed in enumerate(first.seeds):
        expected = MLP((2, 8, 2), random_state=int(seed))
        assert torch.equal(stacks[0][0][k], expected.layers[0].weight)
        assert torch.equal(stacks[1][1][k], expected.layers[2].bias)
    assert not torch.equal(stacks[0][0][0], stacks[0][0][1])
    # A network does not depend on how many train beside it.
    with pytest.warns(ThresholdNotReachedWarning):
        fewer = train_networks(X, y, 2, (2, 8, 2), (1.0,), **kwargs)
    np.testing.assert_array_equal(fewer.train_accuracy, first.train_accuracy[:2])


def test_train_networks_warns_and_reports_unreached_thresholds(rng, tmp_path):
    X, y = rings(rng, 80)
    with pytest.warns(
        ThresholdNotReachedWarning, match=r"2 of 2 networks.*max_epochs=2"
    ) as record:
        result = train_networks(
            X,
            y,
            2,
            (2, 8, 2),
            (0.01, 1.0),
            max_epochs=2,
            random_state=0,
            device="cpu",
            directory=tmp_path,
        )
    # The warning points at the caller's line, not into the library.
    assert record[0].filename == __file__
    assert result.reached[:, 0].all() and not result.reached[:, 1].any()
    assert result.snapshots[1] == [None, None]
    assert (result.snapshot_epoch[:, 1] == -1).all()
    assert np.isnan(result.snapshot_train_accuracy[:, 1]).all()
    assert result.n_epochs_trained.tolist() == [2, 2]
    assert result.networks_at(1.0) == []
    # Paired samples need every threshold: none here; all snapshots: two.
    assert result.samples()[0] == []
    networks, thresholds, ids = result.samples(complete=False)
    assert networks == result.snapshots[0]
    assert thresholds.tolist() == [0.01, 0.01] and ids.tolist() == [0, 1]
    log = json.loads((tmp_path / "training_log.json").read_text())
    assert [entry["reached_all"] for entry in log] == [False, False]
    assert [entry["snapshots"][1] for entry in log] == [None, None]


def test_train_networks_writes_snapshots(rng, tmp_path):
    X, y = rings(rng, 80)
    result = train_networks(
        X,
        y,
        2,
        (2, 8, 2),
        (0.3, 0.4),
        max_epochs=5,
        random_state=0,
        device="cpu",
        directory=tmp_path / "out",
    )
    directory = tmp_path / "out"
    assert tmp_files(directory) == []
    names = sorted(os.listdir(directory))
    assert names == [
        "network0000_threshold00.pt",
        "network0000_threshold01.pt",
        "network0001_threshold00.pt",
        "network0001_threshold01.pt",
        "snapshots.jsonl",
        "training_log.json",
    ]
    records = [json.loads(line) for line in open(directory / "snapshots.jsonl")]
    assert len(records) == 4
    for record in records:
        k, j = record["network"], record["threshold_index"]
        assert record["epoch"] == result.snapshot_epoch[k, j]
        assert record["accuracy"] == result.snapshot_train_accuracy[k, j]
        assert record["test_accuracy"] == result.snapshot_test_accuracy[k, j]
        path = directory / record["file"]
        assert result.paths[j][k] == os.fspath(path)
        loaded = load_snapshot(path)
        for key, value in loaded.state_dict().items():
            assert torch.equal(value, result.snapshots[j][k].state_dict()[key])


def test_train_networks_keeps_snapshots_of_an_interrupted_run(
    rng, tmp_path, monkeypatch
):
    import sklandscapes.nets._batched as batched

    X, y = rings(rng, 80)
    calls = []
    real_save = batched.save_snapshot

    def crash_on_third(*args, **kwargs):
        calls.append(args)
        if len(calls) == 3:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C
        real_save(*args, **kwargs)

    monkeypatch.setattr(batched, "save_snapshot", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        train_networks(
            X,
            y,
            2,
            (2, 8, 2),
            (0.3, 0.4, 0.5),
            max_epochs=5,
            random_state=0,
            device="cpu",
            directory=tmp_path,
        )
    assert tmp_files(tmp_path) == []
    records = [json.loads(line) for line in open(tmp_path / "snapshots.jsonl")]
    assert len(records) == 2
    for record in records:
        assert load_snapshot(tmp_path / record["file"]).widths == (2, 8, 2)


def test_train_networks_progress_bar(rng, capsys):
    X, y = two_blobs(rng, 32)
    with pytest.warns(ThresholdNotReachedWarning):
        train_networks(
            X,
            y,
            2,
            (2, 4, 2),
            (1.0,),
            max_epochs=3,
            lr=1e-4,
            random_state=0,
            device="cpu",
            verbose=1,
        )
    assert "epoch" in capsys.readouterr().err


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(n_networks=0), "n_networks must be an int >= 1, got 0"),
        (dict(thresholds=(0.5, 0.4)), "strictly increasing"),
        (dict(thresholds=(0.5, 1.5)), r"in \(0, 1\]"),
        (dict(y=np.zeros(10, dtype=int)), "same length.*40 rows in X and 10"),
        (dict(X=np.zeros((40, 3))), "X has 3 features.*widths\\[0\\] is 2"),
        (dict(y=np.arange(40) % 3), r"class indices 0, \.\.\., 1"),
        (dict(test_size=1.0), r"test_size must be .* got 1.0"),
        (dict(batch_size=0), "batch_size must be"),
        (dict(lr=-1.0), "lr must be a positive number"),
        (dict(activation="swish"), "activation must be one of"),
        (dict(activation=nn.PReLU), "activation without parameters"),
        (dict(activation=nn.SiLU, directory="out"), "named activation"),
        (dict(thresholds=()), "thresholds is empty.*keep_final=True"),
        (dict(keep_final="yes"), "keep_final must be True or False, got 'yes'"),
    ],
)
def test_train_networks_rejects_bad_input(rng, change, match):
    X, y = two_blobs(rng, 40)
    kwargs = dict(
        X=X,
        y=y,
        n_networks=2,
        widths=(2, 4, 2),
        thresholds=(0.5,),
        device="cpu",
        max_epochs=1,
    )
    kwargs.update(change)
    with pytest.raises(ValueError, match=match):
        train_networks(**kwargs)


# ------------------------------------------------------- final weights (keep_final)

FINAL = dict(lr=0.005, batch_size=16, max_epochs=14, random_state=3, device="cpu")


def _weights_after_every_epoch(monkeypatch):
    """Replace the monitor by a recorder of every network's weights per epoch."""
    import sklandscapes.nets._batched as batched

    after = {}

    class Recorder:
        def __init__(self, monitor, n_networks, build):
            pass

        def __call__(self, epoch, training, layers):
            for position, network in enumerate(training):
                after[int(network), epoch] = [
                    (weight[position].clone(), bias[position].clone())
                    for weight, bias in layers
                ]

        def record(self):
            return None

    monkeypatch.setattr(batched, "StackedMonitor", Recorder)
    return after


def _layers(module):
    return [(linear.weight, linear.bias) for linear in module.layers[::2]]


def test_final_networks_are_the_weights_after_the_last_epoch(rng, monkeypatch):
    X, y = rings(rng, 120)
    args = (X, y, 4, (2, 16, 16, 2), (0.6, 1.0))
    after = _weights_after_every_epoch(monkeypatch)
    with pytest.warns(ThresholdNotReachedWarning, match="final weights are in"):
        result = train_networks(
            *args, keep_final=True, monitor=dict(inputs=X[:5]), **FINAL
        )
    reached_all = result.reached.all(axis=1)
    # Both kinds of network: stopped at its last threshold, or at max_epochs.
    assert reached_all.any() and not reached_all.all()
    for k, network in enumerate(result.final):
        epoch = int(result.n_epochs_trained[k])
        assert epoch == (result.snapshot_epoch[k, -1] if reached_all[k] else 14)
        assert isinstance(network, MLP) and not network.training
        for (weight, bias), (expected_w, expected_b) in zip(
            _layers(network), after[k, epoch]
        ):
            assert torch.equal(weight, expected_w) and torch.equal(bias, expected_b)
        # The last epoch changed the weights: the comparison is not trivial.
        assert not torch.equal(_layers(network)[0][0], after[k, epoch - 1][0][0])
        if reached_all[k]:
            last = result.snapshots[-1][k].state_dict()
            for key, value in network.state_dict().items():
                assert torch.equal(value, last[key])
        train, test = result.train_indices[k], result.test_indices[k]
        with torch.no_grad():
            predicted = network(torch.as_tensor(X)).argmax(1).numpy()
        assert np.mean(predicted[train] == y[train]) == result.final_train_accuracy[k]
        assert np.mean(predicted[test] == y[test]) == result.final_test_accuracy[k]
        assert result.final_train_accuracy[k] == result.train_accuracy[k, epoch - 1]


def test_final_networks_are_samples_only_when_kept(rng):
    X, y = rings(rng, 120)
    args = (X, y, 4, (2, 16, 16, 2), (0.6, 1.0))
    with pytest.warns(ThresholdNotReachedWarning, match="missing snapshots are None"):
        plain = train_networks(*args, **FINAL)
    with pytest.warns(ThresholdNotReachedWarning):
        kept = train_networks(*args, keep_final=True, **FINAL)
    assert plain.final is None and plain.final_paths is None
    assert "final" not in plain.log[0] and "final" in kept.log[0]
    assert_same_training(plain, kept)  # keeping them changes no training
    with pytest.raises(ValueError, match=r"keep_final=True"):
        plain.samples(final=True)
    reached_all = np.flatnonzero(kept.reached.all(axis=1))
    for complete, networks in [(True, reached_all), (False, np.arange(4))]:
        before, labels, ids = kept.samples(complete=complete)
        expected = plain.samples(complete=complete)
        np.testing.assert_array_equal(labels, expected[1])
        np.testing.assert_array_equal(ids, expected[2])
        with_final, labels_final, ids_final = kept.samples(complete, final=True)
        assert with_final[: len(before)] == before
        assert with_final[len(before) :] == [kept.final[k] for k in networks]
        np.testing.assert_array_equal(labels_final[: len(before)], labels)
        assert np.isinf(labels_final[len(before) :]).all()
        assert labels_final.dtype == float and len(labels_final) == len(with_final)
        np.testing.assert_array_equal(ids_final, np.r_[ids, networks])


def test_final_networks_without_thresholds_train_every_epoch(rng, tmp_path):
    X, y = rings(rng, 80)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no threshold, nothing missed
        result = train_networks(
            X,
            y,
            2,
            (2, 8, 2),
            (),
            keep_final=True,
            directory=tmp_path,
            **{**FINAL, "max_epochs": 3},
        )
    assert result.thresholds == () and result.snapshots == []
    assert result.n_epochs_trained.tolist() == [3, 3]
    assert np.isfinite(result.train_accuracy).all()
    networks, labels, ids = result.samples(final=True)
    assert networks == result.final and ids.tolist() == [0, 1]
    assert np.isinf(labels).all()
    assert sorted(os.listdir(tmp_path)) == [
        "network0000_final.pt",
        "network0001_final.pt",
        "snapshots.jsonl",
        "training_log.json",
    ]
    log = json.loads((tmp_path / "training_log.json").read_text())
    for k, entry in enumerate(log):
        assert entry["final"] == dict(
            epoch=3,
            train_accuracy=result.final_train_accuracy[k],
            test_accuracy=result.final_test_accuracy[k],
            path=f"network{k:04d}_final.pt",
        )
        path = tmp_path / entry["final"]["path"]
        assert result.final_paths[k] == os.fspath(path)
        assert load_snapshot_metadata(path)["epoch"] == 3
        assert load_snapshot_metadata(path)["threshold"] is None
        for key, value in load_snapshot(path).state_dict().items():
            assert torch.equal(value, result.final[k].state_dict()[key])


# ---------------------------------------------- batched == single-network training


def train_one_by_one(layers, X, y, train_rows, orders, lr, batch_size, activation):
    """The ordinary way: an nn.Module, torch.optim.Adam, CrossEntropyLoss."""
    widths = [layers[0][0].shape[1]] + [w.shape[0] for w, _ in layers]
    module = MLP(widths, activation=activation, random_state=0).to(X.dtype)
    with torch.no_grad():
        for linear, (weight, bias) in zip(module.layers[::2], layers):
            linear.weight.copy_(weight)
            linear.bias.copy_(bias)
    optimizer = torch.optim.Adam(module.parameters(), lr=lr)
    criterion = nn.CrossEntropyLoss()
    accuracies = []
    for order in orders:
        rows = train_rows[order]
        for start in range(0, len(rows), batch_size):
            batch = rows[start : start + batch_size]
            optimizer.zero_grad()
            criterion(module(X[batch]), y[batch]).backward()
            optimizer.step()
        with torch.no_grad():
            accuracies.append(
                (module(X[train_rows]).argmax(1) == y[train_rows]).double().mean()
            )
    return [
        (m.weight.detach(), m.bias.detach()) for m in module.layers[::2]
    ], accuracies


@pytest.mark.parametrize(
    "dtype, activation, atol",
    [
        # float64: the two computations differ only in summation order (batched
        # vs plain products, zero padding, fused vs for-loop Adam), i.e. by
        # ~1e-16 relative per operation; 30 Adam steps of size <= lr = 1e-2
        # cannot grow that beyond ~1e-12.
        (torch.float64, "relu", 1e-10),
        (torch.float64, "sigmoid", 1e-10),
        # float32: the same rounding at ~6e-8 relative. Adam divides by
        # sqrt(v), so where a gradient is itself rounding noise the two runs
        # may step differently, by at most 2 lr per step; in practice the
        # weights agree to ~1e-6, so 1e-4 is loose enough to be stable and tight
        # enough to catch any real difference (one wrong step moves by ~1e-2).
        (torch.float32, "relu", 1e-4),
    ],
)
def test_batched_training_matches_single_network_training(dtype, activation, atol):
    rng = np.random.default_rng(0)
    n_networks, n_train, batch_size, lr = 3, 50, 16, 1e-2
    widths = (2, 15, 15, 2)
    X_np, y_np = rings(rng, 70)
    X, y = torch.as_tensor(X_np, dtype=dtype), torch.as_tensor(y_np)
    train_rows = torch.as_tensor(
        np.stack([rng.permutation(70)[:n_train] for _ in range(n_networks)])
    )
    epochs = 3
    orders = torch.as_tensor(
        np.stack(
            [
                [rng.permutation(n_train) for _ in range(n_networks)]
                for _ in range(epochs)
            ]
        )
    )
    generators = [torch.Generator().manual_seed(k) for k in range(n_networks)]
    stacks = [
        (w.to(dtype), b.to(dtype)) for w, b in _initial_stacks(widths, generators)
    ]

    activation_class = {"relu": nn.ReLU, "sigmoid": nn.Sigmoid}[activation]
    run = _train_stacked(
        stacks,
        X,
        y,
        train_rows,
        lambda epoch, networks: orders[epoch - 1][networks],
        (1.0,),
        activation=activation_class(),
        lr=lr,
        batch_size=batch_size,
        max_epochs=epochs,
    )
    assert run.n_epochs_trained.tolist() == [epochs] * n_networks
    for k in range(n_networks):
        layers = [(w[k], b[k]) for w, b in stacks]
        expected, accuracies = train_one_by_one(
            layers, X, y, train_rows[k], orders[:, k], lr, batch_size, activation
        )
        for (weight, bias), (exp_weight, exp_bias) in zip(
            [(w[k], b[k]) for w, b in run.final], expected
        ):
            assert weight.dtype == dtype
            torch.testing.assert_close(weight, exp_weight, rtol=0, atol=atol)
            torch.testing.assert_close(bias, exp_bias, rtol=0, atol=atol)
        # The weights did move, so the comparison above is not trivially true.
        assert (run.final[1][0][k] - stacks[1][0][k]).abs().max() > 100 * atol
        np.testing.assert_allclose(run.train_accuracy[k], accuracies, atol=0.03)


def test_frozen_networks_stop_changing(rng):
    X, y = rings(rng, 160)
    generators = [torch.Generator().manual_seed(k) for k in range(4)]
    stacks = _initial_stacks((2, 16, 16, 2), generators)
    n_train = 160
    order_generator = torch.Generator().manual_seed(0)
    taken = {}

    def on_snapshot(network, j, epoch, train_acc, test_acc, layers):
        taken[network, j] = layers

    run = _train_stacked(
        stacks,
        torch.as_tensor(X),
        torch.as_tensor(y),
        torch.arange(n_train).repeat(4, 1),
        lambda epoch, networks: torch.stack(
            [torch.randperm(n_train, generator=order_generator) for _ in networks]
        ),
        (0.7, 0.85),
        activation=nn.ReLU(),
        lr=0.02,
        batch_size=16,
        max_epochs=60,
        on_snapshot=on_snapshot,
    )
    assert (run.snapshot_epoch > 0).all()
    # Networks finish at different epochs; each keeps its weights from then on.
    assert len(set(run.n_epochs_trained.tolist())) > 1
    for k in range(4):
        for (weight, bias), (snap_weight, snap_bias) in zip(
            [(w[k], b[k]) for w, b in run.final], taken[k, 1]
        ):
            assert torch.equal(weight, snap_weight) and torch.equal(bias, snap_bias)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_train_networks_on_cuda(rng):
    X, y = two_blobs(rng, 64)
    kwargs = dict(lr=0.05, batch_size=16, max_epochs=40, random_state=0)
    gpu = train_networks(
        X, y, 4, (2, 8, 8, 2), (0.9, 1.0), device="cuda", keep_final=True, **kwargs
    )
    cpu = train_networks(X, y, 4, (2, 8, 8, 2), (0.9, 1.0), device="cpu", **kwargs)
    assert gpu.reached.all()
    module = gpu.snapshots[1][0]
    assert next(module.parameters()).device.type == "cpu"
    # Every network stopped at its last threshold: its final weights are that
    # snapshot's, back on the CPU.
    for k, final in enumerate(gpu.final):
        for key, value in final.state_dict().items():
            assert value.device.type == "cpu"
            assert torch.equal(value, gpu.snapshots[1][k].state_dict()[key])
    assert np.isfinite(gpu.final_test_accuracy).all()
    # Same seeds, same data order: the same training up to float32 rounding,
    # which can at most shift a crossing by an epoch on this easy problem.
    np.testing.assert_array_equal(gpu.train_indices, cpu.train_indices)
    assert np.abs(gpu.snapshot_epoch - cpu.snapshot_epoch).max() <= 1
    assert make_mlp_classifier((2, 4, 2)).device == "cuda"


# ------------------------------------------- checkpoints, threads, relative paths


def _interrupt_after(monkeypatch, n_epochs):
    """Raise KeyboardInterrupt in the training accuracy of epoch ``n_epochs + 1``."""
    import sklandscapes.nets._batched as batched

    real = batched._accuracy
    epochs = []

    def accuracy(weights, biases, X, y, indices, activation):
        # Calls on the training rows (one per epoch) have the widest indices.
        if indices.shape[1] > 40:
            epochs.append(1)
            if len(epochs) > n_epochs:
                raise KeyboardInterrupt
        return real(weights, biases, X, y, indices, activation)

    monkeypatch.setattr(batched, "_accuracy", accuracy)
    return real


CHECKPOINTED = dict(
    lr=0.005, batch_size=16, max_epochs=40, random_state=3, device="cpu"
)


def test_interrupted_training_resumes_bit_for_bit(rng, tmp_path, monkeypatch):
    X, y = rings(rng, 120)
    args = (X, y, 3, (2, 16, 16, 2), (0.6, 0.8, 0.95))
    whole = train_networks(*args, **CHECKPOINTED)
    # The interrupt must come after a network stopped and snapshots were taken,
    # so that the checkpoint holds a shrunk stack and a partial snapshot list.
    first_stop = int(whole.n_epochs_trained.min())
    assert first_stop < whole.n_epochs_trained.max() - 3
    checkpoint = tmp_path / "state.pt"
    real = _interrupt_after(monkeypatch, first_stop + 3)
    with pytest.raises(KeyboardInterrupt):
        train_networks(
            *args,
            checkpoint=checkpoint,
            checkpoint_every=2,
            directory=tmp_path / "snaps",
            **CHECKPOINTED,
        )
    assert checkpoint.exists() and tmp_files(tmp_path) == []
    monkeypatch.setattr("sklandscapes.nets._batched._accuracy", real)
    resumed = train_networks(
        *args,
        checkpoint=checkpoint,
        checkpoint_every=2,
        directory=tmp_path / "snaps",
        **CHECKPOINTED,
        verbose=0,
    )
    assert_same_training(whole, resumed)
    log = json.loads((tmp_path / "snaps" / "training_log.json").read_text())
    # Paths are relative to the snapshot folder, which can then be moved.
    assert log[0]["snapshots"][0]["path"] == "network0000_threshold00.pt"
    records = (tmp_path / "snaps" / "snapshots.jsonl").read_text().splitlines()
    assert len(records) == int(whole.reached.sum())


def test_final_networks_of_a_resumed_run_are_those_of_the_whole_run(
    rng, tmp_path, monkeypatch
):
    X, y = rings(rng, 120)
    args = (X, y, 3, (2, 16, 16, 2), (0.6, 0.8))
    whole = train_networks(*args, keep_final=True, **CHECKPOINTED)
    # Interrupted after a network stopped: its final weights come back from
    # the checkpoint, the others' from the epochs trained after resuming.
    first_stop = int(whole.n_epochs_trained.min())
    assert first_stop + 2 < whole.n_epochs_trained.max()
    checkpoint, snaps = tmp_path / "state.pt", tmp_path / "snaps"
    real = _interrupt_after(monkeypatch, first_stop + 2)
    with pytest.raises(KeyboardInterrupt):
        train_networks(
            *args,
            keep_final=True,
            checkpoint=checkpoint,
            checkpoint_every=1,
            directory=snaps,
            **CHECKPOINTED,
        )
    assert not list(snaps.glob("*_final.pt"))  # written at the end only
    monkeypatch.setattr("sklandscapes.nets._batched._accuracy", real)
    resumed = train_networks(
        *args,
        keep_final=True,
        checkpoint=checkpoint,
        checkpoint_every=1,
        directory=snaps,
        **CHECKPOINTED,
    )
    assert_same_training(whole, resumed)
    np.testing.assert_array_equal(
        whole.final_test_accuracy, resumed.final_test_accuracy
    )
    for k, (first, second) in enumerate(zip(whole.final, resumed.final)):
        stored = load_snapshot(snaps / f"network{k:04d}_final.pt").state_dict()
        for key, value in first.state_dict().items():
            assert torch.equal(value, second.state_dict()[key])
            assert torch.equal(value, stored[key])


def test_resume_restarts_from_the_checkpoint_epoch(rng, tmp_path, monkeypatch):
    import sklandscapes.nets._batched as batched

    X, y = rings(rng, 120)
    args = (X, y, 2, (2, 16, 16, 2), (0.95,))
    real_accuracy = _interrupt_after(monkeypatch, 5)
    with pytest.raises(KeyboardInterrupt):
        train_networks(
            *args, checkpoint=tmp_path / "c.pt", checkpoint_every=4, **CHECKPOINTED
        )
    monkeypatch.setattr(batched, "_accuracy", real_accuracy)
    calls = []
    real = batched._train_stacked

    def spy(*a, **kwargs):
        calls.append(kwargs["resume"]["epoch"])
        return real(*a, **kwargs)

    monkeypatch.setattr(batched, "_train_stacked", spy)
    train_networks(
        *args, checkpoint=tmp_path / "c.pt", checkpoint_every=4, **CHECKPOINTED
    )
    assert calls == [4]  # epochs 1-4 were not trained again


@pytest.mark.parametrize(
    "damage, match",
    [
        (lambda data: data[: len(data) // 2], "is damaged"),
        (lambda data: b"", "is damaged"),
    ],
    ids=["cut-in-half", "empty"],
)
def test_damaged_checkpoint_is_reported_and_training_starts_over(
    rng, tmp_path, monkeypatch, damage, match
):
    from sklandscapes.exceptions import DamagedFileWarning

    X, y = rings(rng, 120)
    args = (X, y, 2, (2, 16, 16, 2), (0.8, 0.95))
    checkpoint = tmp_path / "c.pt"
    whole = train_networks(*args, **CHECKPOINTED)
    real = _interrupt_after(monkeypatch, 5)
    with pytest.raises(KeyboardInterrupt):
        train_networks(*args, checkpoint=checkpoint, checkpoint_every=2, **CHECKPOINTED)
    monkeypatch.setattr("sklandscapes.nets._batched._accuracy", real)
    checkpoint.write_bytes(damage(checkpoint.read_bytes()))
    with pytest.warns(DamagedFileWarning, match=match):
        again = train_networks(*args, checkpoint=checkpoint, **CHECKPOINTED)
    assert_same_training(whole, again)


def test_checkpoint_of_other_arguments_is_not_used(rng, tmp_path, monkeypatch):
    from sklandscapes.exceptions import DamagedFileWarning

    X, y = rings(rng, 120)
    checkpoint = tmp_path / "c.pt"
    _interrupt_after(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        train_networks(
            X,
            y,
            2,
            (2, 16, 16, 2),
            (0.95,),
            checkpoint=checkpoint,
            checkpoint_every=2,
            **CHECKPOINTED,
        )
    monkeypatch.undo()
    with pytest.warns(DamagedFileWarning, match=r"other arguments \(differs in lr\)"):
        train_networks(
            X,
            y,
            2,
            (2, 16, 16, 2),
            (0.95,),
            checkpoint=checkpoint,
            **{**CHECKPOINTED, "lr": 0.03},
        )


def _threads_seen(monkeypatch):
    import sklandscapes.nets._batched as batched

    real = batched._accuracy
    seen = []

    def accuracy(*args):
        seen.append(torch.get_num_threads())
        return real(*args)

    monkeypatch.setattr(batched, "_accuracy", accuracy)
    return seen


@pytest.mark.parametrize(
    "environment, n_threads, expected",
    [
        ({}, None, 1),  # nothing chosen: one thread for these small networks
        ({}, 3, 3),  # an explicit count wins
        ({"OMP_NUM_THREADS": "3"}, None, "kept"),  # the user's choice is kept
    ],
)
def test_training_thread_count(rng, monkeypatch, environment, n_threads, expected):
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    X, y = two_blobs(rng)
    seen = _threads_seen(monkeypatch)
    before = torch.get_num_threads()
    train_networks(
        X,
        y,
        2,
        (2, 4, 2),
        (0.01,),
        max_epochs=1,
        n_threads=n_threads,
        random_state=0,
        device="cpu",
    )
    assert seen and set(seen) == {before if expected == "kept" else expected}
    assert torch.get_num_threads() == before  # restored


def test_thread_count_set_by_the_user_is_kept(rng, monkeypatch):
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    X, y = two_blobs(rng)
    seen = _threads_seen(monkeypatch)
    before = torch.get_num_threads()
    # A count other than torch's at import, whatever earlier tests (examples
    # run in this process set one thread) left behind.
    from sklandscapes.nets._threads import IMPORT_THREADS

    chosen = IMPORT_THREADS + 1
    torch.set_num_threads(chosen)
    try:
        train_networks(
            X, y, 2, (2, 4, 2), (0.01,), max_epochs=1, random_state=0, device="cpu"
        )
    finally:
        torch.set_num_threads(before)
    assert set(seen) == {chosen}


class ThreadsSeen(Callback):
    """Records torch's thread count at every training batch."""

    def initialize(self):
        self.seen_ = []
        return self

    def on_batch_begin(self, net, **kwargs):
        self.seen_.append(torch.get_num_threads())


class FailAfterOneBatch(Callback):
    def on_batch_end(self, net, **kwargs):
        raise RuntimeError("broken on purpose")


def _skorch_fit(rng, **kwargs):
    X, y = two_blobs(rng, 32)
    seen = ThreadsSeen()
    net = make_mlp_classifier(
        (2, 4, 2),
        max_epochs=2,
        batch_size=16,
        train_split=None,
        verbose=0,
        device="cpu",
        callbacks=[seen, *kwargs.pop("callbacks", [])],
        **kwargs,
    )
    return net, seen, X, y


@pytest.mark.parametrize(
    "environment, n_threads, expected",
    [
        ({}, None, 1),  # nothing chosen: one thread, as train_networks
        ({}, 3, 3),  # an explicit count wins
        ({"OMP_NUM_THREADS": "3"}, None, "kept"),  # the user's choice is kept
    ],
)
def test_skorch_training_thread_count(
    rng, monkeypatch, environment, n_threads, expected
):
    from sklandscapes.nets._threads import IMPORT_THREADS

    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    before = torch.get_num_threads()
    # Torch's count as at import, so that only the environment says "chosen".
    torch.set_num_threads(IMPORT_THREADS)
    try:
        net, seen, X, y = _skorch_fit(rng, n_threads=n_threads)
        net.fit(X, y)
        assert torch.get_num_threads() == IMPORT_THREADS  # restored
        assert len(seen.seen_) == 4  # 2 epochs of 2 batches
        assert set(seen.seen_) == {IMPORT_THREADS if expected == "kept" else expected}
        seen.seen_.clear()
        net.partial_fit(X, y)
        assert set(seen.seen_) == {IMPORT_THREADS if expected == "kept" else expected}
        assert torch.get_num_threads() == IMPORT_THREADS
    finally:
        torch.set_num_threads(before)


def test_skorch_thread_count_chosen_by_the_user_is_kept_and_restored(rng):
    from sklandscapes.nets import torch_threads
    from sklandscapes.nets._threads import IMPORT_THREADS

    before = torch.get_num_threads()
    chosen = IMPORT_THREADS + 1
    try:
        torch.set_num_threads(chosen)
        net, seen, X, y = _skorch_fit(rng)
        net.fit(X, y)
        assert set(seen.seen_) == {chosen}
        # Inside a torch_threads block its count is the user's choice.
        torch.set_num_threads(IMPORT_THREADS)
        seen.seen_.clear()
        with torch_threads(2):
            net.fit(X, y)
            assert torch.get_num_threads() == 2
        assert set(seen.seen_) == {2}
        assert torch.get_num_threads() == IMPORT_THREADS
        # A fit that raises restores the count too.
        net, seen, X, y = _skorch_fit(rng, callbacks=[FailAfterOneBatch()])
        with pytest.raises(RuntimeError, match="broken on purpose"):
            net.fit(X, y)
        assert seen.seen_ == [1] and torch.get_num_threads() == IMPORT_THREADS
    finally:
        torch.set_num_threads(before)


def test_a_block_open_in_another_thread_does_not_count_here(monkeypatch):
    import threading

    from sklandscapes.nets import torch_threads
    from sklandscapes.nets._threads import IMPORT_THREADS

    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    before = torch.get_num_threads()
    opened, release = threading.Event(), threading.Event()

    def hold_a_block():
        with torch_threads(2):
            opened.set()
            release.wait(30)

    other = threading.Thread(target=hold_a_block)
    try:
        torch.set_num_threads(IMPORT_THREADS)
        other.start()
        assert opened.wait(30)
        # No count chosen in this thread: the rule's one thread applies.
        with torch_threads():
            assert torch.get_num_threads() == 1
    finally:
        release.set()
        other.join()
        torch.set_num_threads(before)


def test_skorch_n_threads_is_a_parameter(rng):
    from sklandscapes.nets import ThreadedNeuralNetClassifier

    net, _, X, y = _skorch_fit(rng, n_threads=2)
    assert isinstance(net, ThreadedNeuralNetClassifier)
    assert isinstance(net, NeuralNetClassifier)
    assert net.get_params()["n_threads"] == 2
    assert clone(net).n_threads == 2
    assert net.set_params(n_threads=3).n_threads == 3
    fitted = pickle.loads(pickle.dumps(net.fit(X, y)))
    assert fitted.n_threads == 3 and fitted.predict(X).shape == (32,)
    with pytest.raises(ValueError, match="n_threads must be an int >= 1, got 0"):
        net.set_params(n_threads=0).fit(X, y)


def test_monitor_measures_with_the_thread_rule(rng, monkeypatch):
    import sklandscapes.nets._monitor as monitor_module
    from sklandscapes.nets import TopologicalComplexity
    from sklandscapes.nets._threads import IMPORT_THREADS

    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    seen = []

    class Extractor(monitor_module.ActivationExtractor):
        def fit_transform(self, X, y=None):
            seen.append(torch.get_num_threads())
            return super().fit_transform(X, y)

    monkeypatch.setattr(monitor_module, "ActivationExtractor", Extractor)
    X, y = two_blobs(rng, 32)
    before = torch.get_num_threads()
    torch.set_num_threads(IMPORT_THREADS)
    try:
        # A plain skorch net, fitted with torch's default count: the
        # monitor's own forward passes still use one thread.
        net = NeuralNetClassifier(
            MLP,
            module__widths=(2, 4, 2),
            criterion=nn.CrossEntropyLoss,
            max_epochs=2,
            train_split=None,
            verbose=0,
            callbacks=[TopologicalComplexity(X[:20])],
        )
        net.fit(X, y)
        assert seen == [1, 1, 1]  # epochs 0, 1 and 2
        assert torch.get_num_threads() == IMPORT_THREADS
    finally:
        torch.set_num_threads(before)


def test_bad_checkpoint_and_thread_arguments(rng, tmp_path):
    X, y = two_blobs(rng)
    with pytest.raises(ValueError, match="n_threads must be an int >= 1, got 0"):
        train_networks(X, y, 1, (2, 4, 2), (0.5,), n_threads=0)
    with pytest.raises(ValueError, match="checkpoint_every must be an int >= 1"):
        train_networks(X, y, 1, (2, 4, 2), (0.5,), checkpoint_every=0)
    with pytest.raises(ValueError, match="checkpoint is written only for a named"):
        train_networks(
            X, y, 1, (2, 4, 2), (0.5,), activation=nn.Tanh, checkpoint=tmp_path / "c"
        )
