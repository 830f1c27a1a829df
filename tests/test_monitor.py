"""Topology watched during training: the records equal the pipeline's numbers."""

import io
import pickle
import re
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("skorch")

from sklandscapes import (  # noqa: E402
    ActivationExtractor,
    ActivationNormalizer,
    LandscapeVectorizer,
    RipsPersistence,
    relu_layers,
)
from sklandscapes.nets import (  # noqa: E402
    MLP,
    TopologicalComplexity,
    history_complexity,
    make_mlp_classifier,
    train_networks,
)
from sklandscapes.stats import topological_complexity  # noqa: E402


def rings(rng, n_points=120):
    """A disk inside an annulus: learned over a few epochs."""
    y = np.arange(n_points) % 2
    radius = np.where(y == 1, 1.0, 0.4) + rng.normal(scale=0.08, size=n_points)
    angle = rng.uniform(0, 2 * np.pi, n_points)
    X = np.c_[radius * np.cos(angle), radius * np.sin(angle)]
    return X.astype(np.float32), y


def pipeline(networks, batch, method="global", n_landscapes=None, sample_range=(0, 1)):
    """The pipeline written out step by step, as a user would."""
    center = "auto"
    if method == "local":
        center = ~relu_layers(networks[0], batch)
    clouds = ActivationExtractor(inputs=batch).fit_transform(networks)
    clouds = ActivationNormalizer(method=method, center=center).fit_transform(clouds)
    diagrams = RipsPersistence(local=method == "local").fit_transform(clouds)
    complexity = topological_complexity(diagrams, sample_range)
    if n_landscapes is None:
        return complexity
    vectorizer = LandscapeVectorizer(
        n_landscapes=n_landscapes, resolution=21, sample_range=sample_range
    )
    return complexity, vectorizer.fit_transform(diagrams)


def test_callback_records_equal_the_pipeline_and_resume_with_the_net(rng):
    X, y = rings(rng)
    batch = X[:40]
    monitor = TopologicalComplexity(batch, n_landscapes=2, resolution=21)
    net = make_mlp_classifier(
        (2, 8, 8, 2),
        lr=0.01,
        max_epochs=1,
        train_split=None,
        random_state=0,
        verbose=0,
        device="cpu",
        callbacks=[monitor],
    ).fit(X, y)
    # The network before training: the factory's seed draws these weights.
    untrained = pipeline([MLP((2, 8, 8, 2), random_state=0)], batch, n_landscapes=2)
    # The network as it was after epoch 1 is a snapshot; epoch 2 continues it.
    after_one = pipeline([net.module_], batch, n_landscapes=2)
    net = pickle.loads(pickle.dumps(net))
    net.partial_fit(X, y)
    after_two = pipeline([net.module_], batch, n_landscapes=2)
    epochs, complexity = history_complexity(net.history)
    # Epoch 0 once: partial_fit continues the history, it does not restart it.
    assert epochs.tolist() == [0, 1, 2]
    # Equal, not close: the callback runs the same estimators on the same weights.
    np.testing.assert_array_equal(complexity[0], untrained[0][0])
    np.testing.assert_array_equal(complexity[1], after_one[0][0])
    np.testing.assert_array_equal(complexity[2], after_two[0][0])
    assert not np.array_equal(complexity[0], complexity[1])  # training shows
    epochs, landscapes = history_complexity(
        net.history, name="topological_complexity_landscapes"
    )
    assert epochs.tolist() == [0, 1, 2]
    np.testing.assert_array_equal(landscapes[0], untrained[1][0])
    np.testing.assert_array_equal(landscapes[2], after_two[1][0])
    assert complexity[0, 0] > 0  # the input batch has a hole
    assert complexity[0, 0] == complexity[2, 0]  # and it does not train


def test_callback_records_stay_out_of_the_printed_log(rng, capsys):
    X, y = rings(rng, 60)
    monitor = TopologicalComplexity(X[:30], n_landscapes=1, resolution=5)
    net = make_mlp_classifier(
        (2, 8, 2),
        max_epochs=2,
        train_split=None,
        random_state=0,
        device="cpu",
        callbacks=[monitor],
        callbacks__print_log__keys_ignored=["dur"],
    )
    net.fit(X, y)
    net.partial_fit(X, y)  # the same for a continued fit
    printed = re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out)  # colours
    assert "train_acc" in printed and "train_loss" in printed
    assert "topological" not in printed and "[" not in printed
    assert "dur" not in printed  # the user's keys_ignored still applies
    # The header and its rule (partial_fit continues the table), a row per epoch.
    assert len(printed.strip().splitlines()) == 2 + 4
    # Still in the history, which pickles with the net.
    epochs, complexity = history_complexity(pickle.loads(pickle.dumps(net)).history)
    assert epochs.tolist() == [0, 1, 2, 3, 4] and complexity.shape == (5, 3)
    first = net.history[0]
    assert set(first) >= {
        "topological_complexity",
        "topological_complexity_epoch0",
        "topological_complexity_landscapes",
        "topological_complexity_landscapes_epoch0",
    }


def test_callback_every_and_local_method(rng):
    X, y = rings(rng)
    batch = X[:40]
    monitor = TopologicalComplexity(
        batch, every=2, method="local", sample_range=(0.0, 2.0), name="topo"
    )
    net = make_mlp_classifier(
        (2, 8, 8, 2),
        lr=0.01,
        max_epochs=2,
        train_split=None,
        random_state=0,
        verbose=0,
        device="cpu",
        callbacks=[monitor],
    ).fit(X, y)
    epochs, complexity = history_complexity(net.history, name="topo")
    assert epochs.tolist() == [0, 2]
    expected = pipeline([net.module_], batch, method="local", sample_range=(0, 2))
    np.testing.assert_array_equal(complexity[1:], expected)
    # Fewer epochs than `every`: the untrained network is the only record.
    net.set_params(max_epochs=1).fit(X, y)
    assert history_complexity(net.history, name="topo")[0].tolist() == [0]
    assert monitor.layer_names_ == ["input", "layers.1", "layers.3", "layers.4"]
    with pytest.raises(ValueError, match="no 'other' records"):
        history_complexity(net.history, name="other")


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(every=0), "`every` must be an int >= 1, got 0"),
        (dict(method="weird"), "`method` must be 'global' or 'local'"),
        (dict(n_landscapes="auto"), "`n_landscapes` must be None or an int"),
        (dict(name=""), "`name` must be a non-empty str"),
    ],
)
def test_bad_monitor_settings(rng, params, match):
    X, y = rings(rng, 20)
    with pytest.raises(ValueError, match=match):
        train_networks(X, y, 1, (2, 4, 2), (0.5,), monitor=dict(inputs=X, **params))
    with pytest.raises(ValueError, match=match):
        TopologicalComplexity(X, **params).initialize()


def test_bad_monitor_argument(rng):
    X, y = rings(rng, 20)
    with pytest.raises(ValueError, match="monitor must be None, a Topological"):
        train_networks(X, y, 1, (2, 4, 2), (0.5,), monitor=3)
    with pytest.raises(ValueError, match="monitor: .*unexpected keyword.*'evry'"):
        train_networks(X, y, 1, (2, 4, 2), (0.5,), monitor=dict(inputs=X, evry=2))


TRAINING = dict(lr=0.01, batch_size=16, max_epochs=30, random_state=1, device="cpu")


def test_monitor_records_equal_the_pipeline_on_every_snapshot(rng):
    X, y = rings(rng)
    batch = X[:40]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a network may miss 0.95
        result = train_networks(
            X,
            y,
            3,
            (2, 8, 8, 2),
            (0.6, 0.8, 0.95),
            monitor=dict(inputs=batch, n_landscapes=2, resolution=21),
            **TRAINING,
        )
    record = result.topology
    assert record.layer_names == ["input", "layers.1", "layers.3", "layers.4"]
    # Epoch 0, every network before training, then every epoch.
    assert record.epochs.tolist() == list(range(result.n_epochs_trained.max() + 1))
    assert record.landscape_shape == (4, 1, 2, 21)
    compared = 0
    for j in range(len(result.thresholds)):
        for k in np.flatnonzero(result.reached[:, j]):
            snapshot = result.snapshots[j][k]
            complexity, landscapes = pipeline([snapshot], batch, n_landscapes=2)
            column = result.snapshot_epoch[k, j]
            np.testing.assert_array_equal(record.complexity[k, column], complexity[0])
            np.testing.assert_array_equal(record.landscapes[k, column], landscapes[0])
            compared += 1
    assert compared >= 6
    for k, seed in enumerate(result.seeds):
        untrained = pipeline(
            [MLP((2, 8, 8, 2), random_state=int(seed))], batch, n_landscapes=2
        )
        np.testing.assert_array_equal(record.complexity[k, 0], untrained[0][0])
    # After its last epoch a network is no longer measured, as train_accuracy.
    for k, n_epochs in enumerate(result.n_epochs_trained):
        assert np.isfinite(record.complexity[k, : n_epochs + 1]).all()
        assert np.isnan(record.complexity[k, n_epochs + 1 :]).all()


def test_monitor_resumes_from_a_checkpoint_with_the_same_record(
    rng, tmp_path, monkeypatch
):
    import sklandscapes.nets._batched as batched

    X, y = rings(rng)
    monitor = dict(inputs=X[:30], every=2)
    args = (X, y, 2, (2, 8, 8, 2), (0.6, 0.8))
    whole = train_networks(*args, monitor=monitor, **TRAINING)
    real = batched._accuracy
    calls = []

    def interrupted(weights, biases, X, y, indices, activation):
        if indices.shape[1] > 40:  # the training rows: once per epoch
            calls.append(1)
            if len(calls) > 5:
                raise KeyboardInterrupt
        return real(weights, biases, X, y, indices, activation)

    monkeypatch.setattr(batched, "_accuracy", interrupted)
    checkpoint = tmp_path / "c.pt"
    with pytest.raises(KeyboardInterrupt):
        train_networks(
            *args,
            monitor=monitor,
            checkpoint=checkpoint,
            checkpoint_every=2,
            **TRAINING,
        )
    monkeypatch.setattr(batched, "_accuracy", real)
    assert whole.n_epochs_trained.max() > 6, "the interrupt must come mid-training"
    interrupted_state = checkpoint.read_bytes()
    resumed = train_networks(
        *args, monitor=monitor, checkpoint=checkpoint, checkpoint_every=2, **TRAINING
    )
    np.testing.assert_array_equal(resumed.topology.epochs, whole.topology.epochs)
    np.testing.assert_array_equal(
        resumed.topology.complexity, whole.topology.complexity
    )
    # Another monitor makes the checkpoint unusable rather than mixing records.
    from sklandscapes.exceptions import DamagedFileWarning

    checkpoint.write_bytes(interrupted_state)
    with pytest.warns(DamagedFileWarning, match="differs in monitor"):
        other = train_networks(
            *args,
            monitor=dict(monitor, every=3),
            checkpoint=checkpoint,
            checkpoint_every=2,
            **TRAINING,
        )
    # Epoch 6 is in both schedules (every 2 and every 3): the same numbers.
    np.testing.assert_array_equal(
        other.topology.complexity[:, list(other.topology.epochs).index(6)],
        whole.topology.complexity[:, list(whole.topology.epochs).index(6)],
    )
    # And no monitor at all: the checkpoint is discarded too, with a warning.
    checkpoint.write_bytes(interrupted_state)
    with pytest.warns(DamagedFileWarning, match="differs in monitor"):
        plain = train_networks(
            *args, checkpoint=checkpoint, checkpoint_every=2, **TRAINING
        )
    assert plain.topology is None
    # A checkpoint written before the untrained network was recorded (its
    # records start at epoch 1) is not resumed: its epochs would be shifted.
    old = torch.load(io.BytesIO(interrupted_state), weights_only=True)
    del old["fingerprint"]["monitor"]["records"]
    torch.save(old, checkpoint)
    with pytest.warns(DamagedFileWarning, match="differs in monitor"):
        again = train_networks(
            *args,
            monitor=monitor,
            checkpoint=checkpoint,
            checkpoint_every=2,
            **TRAINING,
        )
    np.testing.assert_array_equal(again.topology.epochs, whole.topology.epochs)
