"""Tests of ActivationExtractor: values against hand-written forward passes."""

import pickle
import re
import sys
import types

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.spatial.distance import pdist, squareform
from sklearn.base import clone
from sklearn.utils.estimator_checks import (
    check_do_not_raise_errors_in_init_or_set_params,
    check_estimator_cloneable,
    check_estimator_repr,
    check_get_params_invariance,
    check_mixin_order,
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
    check_set_params,
)

torch = pytest.importorskip("torch")
nn = torch.nn

from sklandscapes import LayerDistances  # noqa: E402
from sklandscapes.activations import (  # noqa: E402
    ActivationExtractor,
    activation_layers,
    relu_layers,
)
from sklandscapes.exceptions import NoHiddenLayerWarning  # noqa: E402

# The networks run in float32 and the references in float64 NumPy. With
# activations of order 1 to 10 and at most 18 terms per dot product, float32
# rounding stays below ~1e-6 absolute, well inside these tolerances.
RTOL = ATOL = 1e-5


# ``rng`` (NumPy) comes from conftest.py; ``generator`` seeds the weights.
@pytest.fixture
def generator():
    return torch.Generator().manual_seed(0)


def randomized(module, generator):
    """``module`` with weights drawn from ``generator`` (not the global seed)."""
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator))
    return module


def make_mlp(generator):
    return randomized(
        nn.Sequential(
            nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2)
        ),
        generator,
    )


def numpy_params(linear):
    return (
        linear.weight.detach().double().numpy(),
        linear.bias.detach().double().numpy(),
    )


def reference_mlp(net, x):
    """The paper's x^(0..3) of ``make_mlp``'s network, computed in NumPy."""
    (w1, b1), (w2, b2), (w3, b3) = (numpy_params(net[i]) for i in (0, 2, 4))
    x0 = np.asarray(x, dtype=np.float64)
    x1 = np.maximum(x0 @ w1.T + b1, 0)
    x2 = np.tanh(x1 @ w2.T + b2)
    x3 = x2 @ w3.T + b3
    return [x0, x1, x2, x3]


def assert_clouds_equal(actual, expected):
    assert len(actual) == len(expected)
    for cloud, reference in zip(actual, expected):
        assert isinstance(cloud, np.ndarray) and cloud.dtype == np.float64
        assert_allclose(cloud, reference, rtol=RTOL, atol=ATOL)


class Shuffled(nn.Module):
    """Submodules registered in the reverse of the order ``forward`` runs them."""

    def __init__(self):
        super().__init__()
        self.head = nn.Linear(3, 2)
        self.act2 = nn.Tanh()
        self.middle = nn.Linear(4, 3)
        self.act1 = nn.ReLU()
        self.stem = nn.Linear(2, 4)

    def forward(self, x):
        return self.head(self.act2(self.middle(self.act1(self.stem(x)))))


class SharedActivation(nn.Module):
    """One ReLU module called after two different layers."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(2, 3)
        self.fc2 = nn.Linear(3, 3)
        self.out = nn.Linear(3, 2)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.out(self.act(self.fc2(self.act(self.fc1(x)))))


class TinyCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, kernel_size=3)
        self.relu = nn.ReLU()
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(2 * 3 * 3, 2)

    def forward(self, x):
        return self.fc(self.flatten(self.relu(self.conv(x))))


def conv2d_reference(x, weight, bias):
    """Valid 2-D cross-correlation with stride 1, as loops over NumPy patches."""
    n_out, _, k, _ = weight.shape
    height, width = x.shape[2] - k + 1, x.shape[3] - k + 1
    out = np.empty((len(x), n_out, height, width))
    for i in range(height):
        for j in range(width):
            patch = x[:, :, i : i + k, j : j + k]
            out[:, :, i, j] = np.einsum("nckl,ockl->no", patch, weight) + bias
    return out


# --- values ------------------------------------------------------------------


def test_inputs_mode_matches_manual_forward(generator, rng):
    nets = [make_mlp(generator) for _ in range(3)]
    batch = rng.normal(size=(9, 2))
    out = ActivationExtractor(inputs=batch).fit_transform(nets)
    assert out.dtype == object and out.shape == (3, 4)
    for i, net in enumerate(nets):
        assert_clouds_equal(list(out[i]), reference_mlp(net, batch))
        # Layer 0 is the batch itself, not its float32 cast.
        assert_array_equal(out[i, 0], batch)


def test_model_mode_matches_manual_forward(generator, rng):
    net = make_mlp(generator)
    batches = [rng.normal(size=(5, 2)), torch.randn(8, 2, generator=generator)]
    batches.append(rng.normal(size=(3, 2)).tolist())
    out = ActivationExtractor(model=net).fit_transform(batches)
    assert out.shape == (3, 4)
    for i, batch in enumerate(batches):
        assert_clouds_equal(list(out[i]), reference_mlp(net, np.asarray(batch)))
    assert [cloud.shape[0] for cloud in out[:, 3]] == [5, 8, 3]


def test_equal_shaped_cells_stay_an_object_array(generator, rng):
    net = randomized(
        nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2)), generator
    )
    out = ActivationExtractor(inputs=rng.normal(size=(4, 2))).fit_transform([net, net])
    assert out.dtype == object and out.shape == (2, 3)
    assert out[1, 2].shape == (4, 2)


def test_custom_module_is_read_in_forward_order(generator, rng):
    net = randomized(Shuffled(), generator)
    batch = rng.normal(size=(6, 2))
    assert activation_layers(net, batch) == ["act1", "act2", "head"]
    out = ActivationExtractor(inputs=batch).fit_transform([net])
    w1, b1 = numpy_params(net.stem)
    w2, b2 = numpy_params(net.middle)
    w3, b3 = numpy_params(net.head)
    x1 = np.maximum(batch @ w1.T + b1, 0)
    x2 = np.tanh(x1 @ w2.T + b2)
    assert_clouds_equal(list(out[0]), [batch, x1, x2, x2 @ w3.T + b3])


def test_module_called_twice_is_named_per_call(generator, rng):
    net = randomized(SharedActivation(), generator)
    batch = rng.normal(size=(5, 2))
    assert activation_layers(net, batch) == ["act:0", "act:1", "out"]
    out = ActivationExtractor(inputs=batch, layers=["act:1"]).fit_transform([net])
    w1, b1 = numpy_params(net.fc1)
    w2, b2 = numpy_params(net.fc2)
    x2 = np.maximum(np.maximum(batch @ w1.T + b1, 0) @ w2.T + b2, 0)
    assert_clouds_equal(list(out[0]), [batch, x2])
    with pytest.raises(ValueError, match=r"'act' runs 2 times.*'act:0', 'act:1'"):
        ActivationExtractor(inputs=batch, layers=["act"]).fit_transform([net])


def test_cnn_feature_maps_are_flattened(generator, rng):
    net = randomized(TinyCNN(), generator)
    batch = rng.normal(size=(4, 1, 5, 5))
    out = ActivationExtractor(inputs=batch).fit_transform([net])
    assert [cloud.shape for cloud in out[0]] == [(4, 25), (4, 18), (4, 2)]
    weight = net.conv.weight.detach().double().numpy()
    bias = net.conv.bias.detach().double().numpy()
    feature_map = np.maximum(conv2d_reference(batch, weight, bias), 0)
    flat = feature_map.reshape(4, -1)  # (C, H, W) order, like nn.Flatten
    w, b = numpy_params(net.fc)
    assert_clouds_equal(list(out[0]), [batch.reshape(4, -1), flat, flat @ w.T + b])


def test_softmax_after_the_logits_is_left_out(generator, rng):
    net = randomized(
        nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2), nn.Softmax(dim=1)),
        generator,
    )
    batch = rng.normal(size=(6, 2))
    assert activation_layers(net, batch) == ["1", "2"]
    out = ActivationExtractor(inputs=batch, include_input=False).fit_transform([net])
    w1, b1 = numpy_params(net[0])
    w2, b2 = numpy_params(net[2])
    logits = np.maximum(batch @ w1.T + b1, 0) @ w2.T + b2
    assert_clouds_equal(list(out[0]), [np.maximum(batch @ w1.T + b1, 0), logits])


class TemperatureSoftmax(nn.Module):
    """A softmax module of the user's own, without submodules."""

    def forward(self, x):
        return torch.softmax(x / 2, dim=1)


@pytest.mark.parametrize(
    "make, reference",
    [
        (lambda: nn.Softmax(dim=1), lambda z: torch.softmax(z, 1)),
        (lambda: nn.Softmin(dim=1), lambda z: torch.softmax(-z, 1)),
        (lambda: nn.LogSoftmax(dim=1), lambda z: torch.log_softmax(z, 1)),
        (TemperatureSoftmax, lambda z: torch.softmax(z / 2, 1)),
    ],
    ids=["Softmax", "Softmin", "LogSoftmax", "own module"],
)
def test_a_softmax_between_affine_layers_is_no_auto_layer(
    make, reference, generator, rng
):
    net = randomized(
        nn.Sequential(
            nn.Linear(2, 3), make(), nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 2)
        ),
        generator,
    )
    batch = rng.normal(size=(6, 2))
    # Probabilities, not an activation: "auto" takes the ReLU and the logits.
    assert activation_layers(net, batch) == ["3", "4"]
    # Still a layer by its name.
    out = ActivationExtractor(inputs=batch, layers=["1"], include_input=False)
    w1, b1 = numpy_params(net[0])
    expected = reference(torch.from_numpy(batch @ w1.T + b1)).numpy()
    assert_clouds_equal(list(out.fit_transform([net])[0]), [expected])
    assert relu_layers(net, batch, layers=["1", "3"]).tolist() == [False, False, True]


def test_softmax2d_is_no_auto_layer(generator, rng):
    net = randomized(
        nn.Sequential(
            nn.Conv2d(1, 2, 3),
            nn.Softmax2d(),
            nn.Conv2d(2, 2, 3),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(2, 2),
        ),
        generator,
    )
    batch = rng.normal(size=(4, 1, 5, 5))
    assert activation_layers(net, batch) == ["3", "5"]
    out = ActivationExtractor(inputs=batch, layers=["1"], include_input=False)
    with torch.no_grad():
        expected = torch.softmax(net[0](torch.from_numpy(batch).float()), dim=1)
    assert_clouds_equal(
        list(out.fit_transform([net])[0]), [expected.reshape(4, -1).double().numpy()]
    )


def test_only_a_softmax_warns_no_hidden_layer(rng):
    net = nn.Sequential(nn.Linear(2, 3), nn.Softmax(dim=1), nn.Linear(3, 2))
    with pytest.warns(NoHiddenLayerWarning, match=r"not those of the softmax family"):
        assert activation_layers(net, rng.normal(size=(4, 2))) == ["2"]


def test_consecutive_affine_layers_count_as_one():
    net = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 2))
    assert activation_layers(net) == ["2", "3"]


def test_inplace_activation_does_not_overwrite_logits(generator, rng):
    # ReLU(inplace=True) after the last Linear writes into the Linear's output;
    # the logits must still be the values before that ReLU.
    net = randomized(
        nn.Sequential(
            nn.Linear(2, 4),
            nn.ReLU(inplace=True),
            nn.Linear(4, 3),
            nn.ReLU(inplace=True),
        ),
        generator,
    )
    batch = rng.normal(size=(20, 2))
    out = ActivationExtractor(inputs=batch).fit_transform([net])
    w1, b1 = numpy_params(net[0])
    w2, b2 = numpy_params(net[2])
    logits = np.maximum(batch @ w1.T + b1, 0) @ w2.T + b2
    assert (logits < 0).any()  # otherwise the test could not tell
    assert_allclose(out[0, 2], logits, rtol=RTOL, atol=ATOL)


def test_caller_batch_is_not_written_by_an_inplace_first_module(generator):
    net = randomized(nn.Sequential(nn.ReLU(inplace=True), nn.Linear(2, 2)), generator)
    net = net.double()  # same dtype and device: the tensor could be shared
    batch = torch.randn(5, 2, generator=generator, dtype=torch.float64)
    before = batch.clone()
    out = ActivationExtractor(inputs=batch, layers=[-1]).fit_transform([net])
    assert torch.equal(batch, before)
    assert_array_equal(out[0, 0], before.numpy())


def test_eval_mode_is_used(generator, rng):
    # Dropout in train mode would zero about half of the hidden units.
    net = make_mlp(generator)
    with_dropout = nn.Sequential(*net[:2], nn.Dropout(0.5), *net[2:]).train()
    batch = rng.normal(size=(30, 2))
    out = ActivationExtractor(inputs=batch).fit_transform([with_dropout])
    assert_clouds_equal(list(out[0]), reference_mlp(net, batch))


@pytest.mark.parametrize("batch_size", [1, 7, 29, 30, 100])
def test_batch_size_does_not_change_the_result(generator, rng, batch_size):
    nets = [make_mlp(generator).double() for _ in range(2)]
    batch = rng.normal(size=(30, 2))
    full = ActivationExtractor(inputs=batch).fit_transform(nets)
    chunked = ActivationExtractor(inputs=batch, batch_size=batch_size).fit_transform(
        nets
    )
    for index in np.ndindex(*full.shape):
        # float64 throughout: chunking can only change the order of the
        # row-wise sums inside BLAS, a few ulps at most.
        assert_allclose(chunked[index], full[index], rtol=1e-12, atol=1e-12)


def test_inputs_are_cast_to_the_parameter_dtype(generator):
    net = make_mlp(generator).double()
    batch = np.arange(8, dtype=np.int64).reshape(4, 2)
    out = ActivationExtractor(inputs=batch).fit_transform([net])
    # Both sides in float64: only summation order differs.
    assert_allclose(out[0, 3], reference_mlp(net, batch)[3], rtol=1e-12)


# --- layers ------------------------------------------------------------------


def test_layers_by_name_and_by_index(generator, rng):
    net = make_mlp(generator)
    batch = rng.normal(size=(7, 2))
    auto = ActivationExtractor(inputs=batch).fit_transform([net])
    by_index = ActivationExtractor(inputs=batch, layers=[-1, 0]).fit_transform([net])
    assert by_index.shape == (1, 3)
    for column, expected in zip(by_index[0], [auto[0, 0], auto[0, 3], auto[0, 1]]):
        assert_array_equal(column, expected)

    # Any module by name, in the order given: "0" is the first pre-activation.
    by_name = ActivationExtractor(
        inputs=batch, layers=["3", "0"], include_input=False
    ).fit_transform([net])
    w1, b1 = numpy_params(net[0])
    assert by_name.shape == (1, 2)
    assert_array_equal(by_name[0, 0], auto[0, 2])
    assert_allclose(by_name[0, 1], batch @ w1.T + b1, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("include_input", [True, False])
def test_include_input(generator, rng, include_input):
    net = make_mlp(generator)
    batch = rng.normal(size=(4, 2))
    out = ActivationExtractor(inputs=batch, include_input=include_input).fit_transform(
        [net]
    )
    expected = reference_mlp(net, batch)[0 if include_input else 1 :]
    assert_clouds_equal(list(out[0]), expected)


def test_unknown_layer_name_lists_the_valid_ones(generator, rng):
    net = make_mlp(generator)
    extractor = ActivationExtractor(inputs=rng.normal(size=(4, 2)), layers=["5"])
    message = r"unknown layer '5'.*Valid names.*\['0', '1', '2', '3', '4'\]"
    with pytest.raises(ValueError, match=message):
        extractor.fit_transform([net])
    extractor.set_params(layers=["act_1"])
    with pytest.raises(ValueError, match="Did you mean 'act1'"):
        extractor.fit_transform([Shuffled()])


def test_layer_that_did_not_run(rng):
    net = Shuffled()
    net.unused = nn.ReLU()
    with pytest.raises(ValueError, match="'unused'.*did not run"):
        ActivationExtractor(
            inputs=rng.normal(size=(3, 2)), layers=["unused"]
        ).fit_transform([net])


def test_layer_index_out_of_range(generator, rng):
    extractor = ActivationExtractor(inputs=rng.normal(size=(4, 2)), layers=[3])
    with pytest.raises(ValueError, match=r"index 3 .*out of range.*-3 to 2"):
        extractor.fit_transform([make_mlp(generator)])


@pytest.mark.parametrize(
    "layers, message",
    [([1.5], r"item 0 is 1\.5"), (["1", True], "item 1 is True"), ([], "empty")],
)
def test_invalid_layers(rng, layers, message):
    with pytest.raises(ValueError, match=message):
        ActivationExtractor(inputs=rng.normal(size=(4, 2)), layers=layers).fit([])


def test_layer_output_must_keep_the_batch_axis(rng):
    class Transposed(nn.Module):
        def forward(self, x):
            return x.T

    class Pair(nn.Module):
        def forward(self, x):
            return x, x

    net = nn.Sequential(nn.Linear(2, 3), Transposed(), Pair())
    extractor = ActivationExtractor(inputs=rng.normal(size=(4, 2)))
    with pytest.raises(ValueError, match=r"layer '1' returned shape \(3, 4\)"):
        extractor.set_params(layers=["1"]).fit_transform([net])
    with pytest.raises(ValueError, match="layer '2' returned a tuple, not a tensor"):
        extractor.set_params(layers=["2"]).fit_transform([net])


def test_no_affine_layer(rng):
    net = nn.Sequential(nn.ReLU(), nn.Tanh())
    with pytest.raises(ValueError, match="sample 0: no affine layer"):
        ActivationExtractor(inputs=rng.normal(size=(4, 2))).fit_transform([net])
    # Named layers need no affine one.
    out = ActivationExtractor(inputs=np.ones((4, 2)), layers=["1"]).fit_transform([net])
    assert_allclose(out[0, 1], np.full((4, 2), np.tanh(1.0)), rtol=RTOL)


def test_networks_of_different_depths(generator, rng):
    deeper = make_mlp(generator)
    shallow = randomized(
        nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2)), generator
    )
    with pytest.raises(ValueError, match=r"sample 1 has 3 layers.*sample 0 has 4"):
        ActivationExtractor(inputs=rng.normal(size=(4, 2))).fit_transform(
            [deeper, shallow]
        )


def test_activation_layers_guesses_inputs_only_for_linear_first():
    mlp = nn.Sequential(nn.Linear(2, 3), nn.GELU(), nn.Linear(3, 2))
    assert activation_layers(mlp) == ["1", "2"]
    with pytest.raises(ValueError, match="Pass `inputs`"):
        activation_layers(TinyCNN())
    # Registration order puts head (3 inputs) first, but forward starts at stem.
    with pytest.raises(ValueError, match="guessed batch of zeros.*pass `inputs`"):
        activation_layers(Shuffled())


# --- the torch boundary ------------------------------------------------------


def test_skorch_net_uses_its_module(rng):
    skorch = pytest.importorskip("skorch")
    torch.manual_seed(0)  # skorch initializes the module from the global seed
    X = rng.normal(size=(40, 2)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    net = skorch.NeuralNetClassifier(
        nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 2)),
        criterion=nn.CrossEntropyLoss,
        max_epochs=1,
        train_split=None,
        device="cpu",
        verbose=0,
    ).fit(X, y)
    from_net = ActivationExtractor(inputs=X[:10]).fit_transform([net])
    from_module = ActivationExtractor(inputs=X[:10]).fit_transform([net.module_])
    for index in np.ndindex(*from_net.shape):
        assert_array_equal(from_net[index], from_module[index])
    assert_allclose(from_net[0, 2], net.forward(X[:10]).numpy(), rtol=RTOL, atol=ATOL)
    out = ActivationExtractor(model=net).fit_transform([X[:5], X[5:8]])
    assert out.shape == (2, 3)
    with pytest.raises(ValueError, match="has no module_; fit it first"):
        ActivationExtractor(inputs=X[:10]).fit_transform([clone(net)])


def all_hooks(module):
    return [
        hooks
        for sub in module.modules()
        for hooks in (sub._forward_hooks, sub._forward_pre_hooks)
        if hooks
    ]


def test_training_mode_restored_and_hooks_removed(generator, rng):
    net = make_mlp(generator).train()
    net[1].eval()  # a submodule kept in eval mode by its owner must stay so
    modes = [sub.training for sub in net.modules()]
    ActivationExtractor(inputs=rng.normal(size=(4, 2))).fit_transform([net])
    assert [sub.training for sub in net.modules()] == modes
    assert all_hooks(net) == []

    with pytest.raises(ValueError, match="5 features"):
        ActivationExtractor(inputs=rng.normal(size=(4, 5))).fit_transform([net])
    assert [sub.training for sub in net.modules()] == modes
    assert all_hooks(net) == []


def test_user_hooks_are_kept(generator, rng):
    net = make_mlp(generator)
    seen = []
    handle = net[0].register_forward_hook(lambda *args: seen.append(1))
    ActivationExtractor(inputs=rng.normal(size=(4, 2))).fit_transform([net])
    assert seen == [1] and len(net[0]._forward_hooks) == 1
    handle.remove()


def test_feature_count_mismatch_names_both_numbers(generator, rng):
    net = make_mlp(generator)
    with pytest.raises(
        ValueError,
        match=r"sample 0: the inputs have 5 features.*"
        r"first affine layer '0' \(Linear\) expects in_features=2",
    ):
        ActivationExtractor(inputs=rng.normal(size=(4, 5))).fit_transform([net])
    with pytest.raises(ValueError, match=r"sample 1: the inputs have 3 features"):
        ActivationExtractor(model=net).fit_transform(
            [rng.normal(size=(4, 2)), rng.normal(size=(4, 3))]
        )


def test_other_forward_errors_are_wrapped_with_context(generator, rng):
    net = randomized(TinyCNN(), generator)
    batch = rng.normal(size=(4, 3, 5, 5))  # 3 channels; the conv wants 1
    with pytest.raises(
        ValueError,
        match=r"sample 0: the forward pass failed on "
        r"inputs of shape \(4, 3, 5, 5\)",
    ) as info:
        ActivationExtractor(inputs=batch).fit_transform([net])
    assert isinstance(info.value.__cause__, RuntimeError)
    assert all_hooks(net) == []


def test_non_finite_activations_name_sample_and_layer(generator, rng):
    good, bad = make_mlp(generator), make_mlp(generator)
    with torch.no_grad():
        bad[2].weight[0, 0] = float("nan")
    batch = rng.normal(size=(4, 2))
    message = r"sample 1, layer 2 \('3'\): NaN or inf"
    with pytest.raises(ValueError, match=message) as info:
        ActivationExtractor(inputs=batch).fit_transform([good, bad])
    assert "sample 0" not in str(info.value)

    batch[2, 1] = np.inf
    with pytest.raises(ValueError, match=r"sample 0, layer 0 \('input'\)"):
        ActivationExtractor(inputs=batch).fit_transform([good])


# --- networks from paths -----------------------------------------------------


def test_snapshot_paths_go_through_load_snapshot(monkeypatch, tmp_path, generator, rng):
    # Paths must reach the snapshot reader (below the estimators and nets).
    net = make_mlp(generator)
    loaded = []

    def load_snapshot(path):
        loaded.append(path)
        return net

    fake = types.ModuleType("sklandscapes._snapshot_files")
    fake.load_snapshot = load_snapshot
    monkeypatch.setitem(sys.modules, "sklandscapes._snapshot_files", fake)
    path = tmp_path / "net.pt"
    path.write_bytes(b"")
    batch = rng.normal(size=(4, 2))
    out = ActivationExtractor(inputs=batch).fit_transform([path, str(path)])
    assert loaded == [str(path), str(path)]
    for cloud, reference in zip(out[1], reference_mlp(net, batch)):
        assert_allclose(cloud, reference, rtol=RTOL, atol=ATOL)


def test_missing_snapshot_path(tmp_path, rng):
    missing = tmp_path / "nowhere.pt"
    message = re.escape(f"sample 0: no snapshot file at {str(missing)!r}")
    with pytest.raises(FileNotFoundError, match=message):
        ActivationExtractor(inputs=rng.normal(size=(4, 2))).fit_transform([missing])


def test_real_snapshot_round_trip(tmp_path, generator, rng):
    nets = pytest.importorskip("sklandscapes.nets")
    if not hasattr(nets, "load_snapshot"):
        pytest.skip("sklandscapes.nets has no load_snapshot yet")

    class MLPLike(nn.Module):  # the state_dict layout of sklandscapes.nets.MLP
        def __init__(self):
            super().__init__()
            self.layers = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2))

        def forward(self, x):
            return self.layers(x)

    module = randomized(MLPLike(), generator)
    path = tmp_path / "snapshot.pt"
    torch.save(
        dict(
            format="sklandscapes-snapshot",
            version=1,
            module_class="MLP",
            module_kwargs={"widths": [2, 3, 2], "activation": "relu"},
            state_dict=module.state_dict(),
            threshold=0.9,
            accuracy=0.93,
            epoch=4,
        ),
        path,
    )
    batch = rng.normal(size=(5, 2))
    from_path = ActivationExtractor(inputs=batch).fit_transform([path])
    from_module = ActivationExtractor(inputs=batch).fit_transform([module])
    for index in np.ndindex(*from_path.shape):
        assert_array_equal(from_path[index], from_module[index])

    not_a_snapshot = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, not_a_snapshot)
    with pytest.raises(ValueError, match="sample 1: "):
        ActivationExtractor(inputs=batch).fit_transform([path, not_a_snapshot])


def test_auto_layers_of_the_package_mlp_are_its_layer_modules(rng):
    nets = pytest.importorskip("sklandscapes.nets")
    if not hasattr(nets, "MLP"):
        pytest.skip("sklandscapes.nets has no MLP yet")
    mlp = nets.MLP((2, 5, 4, 3), random_state=0)
    names = {module: name for name, module in mlp.named_modules()}
    expected = [names[module] for module in mlp.layer_modules]
    assert activation_layers(mlp, rng.normal(size=(3, 2))) == expected


# --- parameters and X --------------------------------------------------------


def test_exactly_one_of_inputs_and_model(generator):
    net = make_mlp(generator)
    with pytest.raises(ValueError, match=r"exactly one of `inputs`.*`model`.*both"):
        ActivationExtractor(inputs=np.ones((3, 2)), model=net).fit([net])
    with pytest.raises(ValueError, match=r"exactly one of `inputs`.*`model`.*neither"):
        ActivationExtractor().fit([net])


def test_bad_X(generator):
    net = make_mlp(generator)
    with pytest.raises(ValueError, match=r"single Sequential; wrap it in a list"):
        ActivationExtractor(inputs=np.ones((3, 2))).fit(net)
    with pytest.raises(ValueError, match=r"single ndarray; wrap it in a list"):
        ActivationExtractor(model=net).fit(np.ones((3, 2)))
    with pytest.raises(ValueError, match=r"sample 1: expected a torch.nn.Module.*int"):
        ActivationExtractor(inputs=np.ones((3, 2))).fit([net, 3])
    message = r"sample 1: the batch must have shape .*\(2,\)"
    with pytest.raises(ValueError, match=message):
        ActivationExtractor(model=net).fit([np.ones((3, 2)), np.ones(2)])
    with pytest.raises(ValueError, match="X is empty"):
        ActivationExtractor(model=net).fit([])
    with pytest.raises(ValueError, match=r"`inputs` has no points"):
        ActivationExtractor(inputs=np.ones((0, 2))).fit([net])


def test_a_modulelist_is_a_sequence_of_networks(generator, rng):
    nets = nn.ModuleList([make_mlp(generator), make_mlp(generator)])
    batch = rng.normal(size=(3, 2))
    out = ActivationExtractor(inputs=batch).fit_transform(nets)
    assert_clouds_equal(list(out[1]), reference_mlp(nets[1], batch))


def test_device_validation(generator):
    extractor = ActivationExtractor(inputs=np.ones((3, 2)), device="gpu0")
    with pytest.raises(ValueError, match=r"`device` must be 'auto' or a torch device"):
        extractor.fit([make_mlp(generator)])
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            extractor.set_params(device="cuda").fit([make_mlp(generator)])


def test_transform_without_fit_and_fit_returns_self(generator, rng):
    net = make_mlp(generator)
    batch = rng.normal(size=(4, 2))
    extractor = ActivationExtractor(inputs=batch, device="cpu")
    assert extractor.fit([net]) is extractor
    out = ActivationExtractor(inputs=batch).transform([net])
    assert_clouds_equal(list(out[0]), reference_mlp(net, batch))


def test_import_error_names_what_to_install(monkeypatch):
    from sklandscapes import activations

    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail
    with pytest.raises(ImportError, match=r'pip install "sklandscapes\[torch\]"'):
        activations._import_torch()


# --- scikit-learn ------------------------------------------------------------


@pytest.mark.parametrize(
    "check",
    [
        check_estimator_cloneable,
        check_mixin_order,
        check_no_attributes_set_in_init,
        check_get_params_invariance,
        check_set_params,
        check_estimator_repr,
        check_parameters_default_constructible,
        check_do_not_raise_errors_in_init_or_set_params,
    ],
)
def test_sklearn_data_free_checks(check):
    check("ActivationExtractor", ActivationExtractor())


def test_clone_get_params_and_pickle(generator, rng):
    batch = rng.normal(size=(5, 2))
    extractor = ActivationExtractor(inputs=batch, layers=[0, "4"], batch_size=2)
    params = extractor.get_params()
    assert params["inputs"] is batch and params["layers"] == [0, "4"]
    cloned = clone(extractor)
    assert_array_equal(cloned.inputs, batch)
    assert cloned.inputs is not batch and cloned.batch_size == 2

    net = make_mlp(generator)
    expected = extractor.fit_transform([net])
    restored = pickle.loads(pickle.dumps(extractor))
    for copy_ in (cloned, restored):
        got = copy_.fit_transform([net])
        for index in np.ndindex(*expected.shape):
            assert_array_equal(got[index], expected[index])

    # In model mode the network travels with the estimator.
    restored = pickle.loads(pickle.dumps(ActivationExtractor(model=net)))
    got = restored.fit_transform([batch])
    assert_clouds_equal(list(got[0]), reference_mlp(net, batch))


def test_pipeline_cross_validation(generator, rng):
    # X is a list of networks; scikit-learn slices it like any sequence.
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer
    from sklearn.tree import DecisionTreeClassifier

    nets = [make_mlp(generator) for _ in range(8)]
    y = np.array([0, 1] * 4)
    last_layer_mean = FunctionTransformer(
        lambda clouds: np.array([[cloud.mean()] for cloud in clouds[:, -1]])
    )
    pipe = make_pipeline(
        ActivationExtractor(inputs=rng.normal(size=(6, 2))),
        last_layer_mean,
        DecisionTreeClassifier(random_state=0),
    )
    scores = cross_val_score(pipe, nets, y, cv=2)
    assert scores.shape == (2,)


# --- GPU ---------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("device", ["auto", "cuda", "cuda:0"])
def test_cuda_matches_cpu(generator, rng, device):
    net = make_mlp(generator)
    batch = rng.normal(size=(50, 2))
    on_cpu = ActivationExtractor(inputs=batch, device="cpu").fit_transform([net])
    on_gpu = ActivationExtractor(inputs=batch, device=device).fit_transform([net])
    # float32 on both; CUDA matmuls sum in another order (TF32 is off for
    # matmul by default), so a few float32 ulps apart.
    for index in np.ndindex(*on_cpu.shape):
        assert_allclose(on_gpu[index], on_cpu[index], rtol=RTOL, atol=ATOL)
    assert next(net.parameters()).device.type == "cpu"  # copied, never moved

    # A network already on the GPU runs there, from a CPU batch.
    on_gpu_net = ActivationExtractor(inputs=batch, device="auto").fit_transform(
        [net.cuda()]
    )
    assert_allclose(on_gpu_net[0, -1], on_cpu[0, -1], rtol=RTOL, atol=ATOL)
    assert next(net.parameters()).device.type == "cuda"


def test_package_imports_without_torch():
    # The topological core must not pull in PyTorch: a fresh interpreter in
    # which `import torch` fails still imports sklandscapes and its core steps.
    import subprocess
    import sys

    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.partition('.')[0] == 'torch':\n"
        "            raise ImportError('blocked')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import sklandscapes\n"
        "from sklandscapes import ActivationExtractor, RipsPersistence\n"
        "assert 'torch' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_relu_layers_follow_the_extractor_layout(rng):
    net = nn.Sequential(
        nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 2)
    )
    batch = rng.normal(size=(7, 3))
    clouds = ActivationExtractor(inputs=batch).fit_transform([net])
    flags = relu_layers(net, batch)
    assert flags.tolist() == [False, True, False, False]
    assert len(flags) == clouds.shape[1]
    # The ReLU cloud is non-negative, the others are not by construction.
    assert (clouds[0, 1] >= 0).all()
    assert relu_layers(net, batch, include_input=False).tolist() == [True, False, False]
    assert relu_layers(net, batch, layers=["0", -1, 0]).tolist() == [
        False,
        False,
        False,
        True,
    ]
    with pytest.raises(ValueError, match="out of range"):
        relu_layers(net, batch, layers=[5])


def test_relu_layers_of_the_package_mlp():
    from sklandscapes.nets import MLP

    flags = relu_layers(MLP((64, 10, 10, 10)))
    # input (pixels: centered by the paper's rule), 2 ReLU layers, logits
    assert flags.tolist() == [False, True, True, False]


def test_forward_raising_key_error_gets_the_sample_prefix(rng):
    class LooksUpAFeature(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(2, 2)

        def forward(self, x):
            return self.linear({"inputs": x}["features"])

    with pytest.raises(
        ValueError, match=r"sample 0: the forward pass failed on .*'features'"
    ) as info:
        ActivationExtractor(inputs=rng.normal(size=(4, 2))).fit_transform(
            [LooksUpAFeature()]
        )
    assert isinstance(info.value.__cause__, KeyError)


def test_a_dict_of_networks_is_refused_with_a_hint(rng):
    net = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2))
    with pytest.raises(ValueError, match=r"got a dict; pass list\(X.values\(\)\)"):
        ActivationExtractor(inputs=rng.normal(size=(4, 2))).fit({"a": net})


# --- output="distances": LayerDistances computed on the device -----------------

U = 2.0**-53


def assert_within_the_documented_bound(computed, reference, n_features):
    """|d^2 - reference^2| within the documented bound plus the reference's own.

    Ours: a relative 1e-8 (pairs trusted to the matrix product), or
    (k + 3) u d^2 (pairs recomputed from differences). The reference (pdist
    of the float64 cloud, differences first) is within (k + 3) u d^2 itself.
    """
    k = n_features
    bound = np.maximum(1e-8 * computed**2, (k + 3) * U * reference**2)
    bound += (k + 3) * U * reference**2
    assert (np.abs(computed**2 - reference**2) <= bound).all()


def test_distances_match_the_clouds_within_the_stated_bound(generator, rng):
    net = randomized(TinyCNN(), generator)
    batch = torch.from_numpy(rng.normal(size=(30, 1, 5, 5)).astype(np.float32))
    clouds = ActivationExtractor(inputs=batch).fit_transform([net])
    cells = ActivationExtractor(
        inputs=batch, output="distances", block_size=7
    ).fit_transform([net])
    assert cells.shape == clouds.shape
    for cloud, cell in zip(clouds[0], cells[0]):
        assert isinstance(cell, LayerDistances)
        reference = squareform(pdist(cloud))
        assert_within_the_documented_bound(cell.distances, reference, cloud.shape[1])
        np.testing.assert_array_equal(cell.distances, cell.distances.T)
        assert (np.diag(cell.distances) == 0).all()
        # Norms: k squares summed in float64, a few ulps.
        assert_allclose(cell.norms, np.linalg.norm(cloud, axis=1), rtol=1e-13)
        assert_allclose(
            cell.centered_norms,
            np.linalg.norm(cloud - cloud.mean(axis=0), axis=1),
            rtol=1e-12,
        )
        assert cell.nonnegative == bool((cloud >= 0).all())
    # The ReLU feature map is non-negative, the input and the logits are not.
    assert [cell.nonnegative for cell in cells[0]] == [False, True, False]


def test_a_tight_cluster_far_from_the_mean_stays_within_the_bound(rng):
    # The hard case of |a|^2 + |b|^2 - 2ab: points much closer to each other
    # than to the mean (two clusters 1e3 apart, spread 1e-2), 500 features.
    centers = rng.normal(size=(2, 500)) * 50
    points = centers[rng.integers(0, 2, 40)] + 1e-2 * rng.normal(size=(40, 500))
    batch = torch.from_numpy(points.astype(np.float32))
    cloud = batch.double().numpy()
    extractor = ActivationExtractor(
        model=nn.Sequential(nn.Identity()), layers=["0"], include_input=False
    )
    cell = extractor.set_params(output="distances").fit_transform([batch])[0, 0]
    reference = squareform(pdist(cloud))
    assert_within_the_documented_bound(cell.distances, reference, 500)
    # The pairs of a cluster were recomputed from differences, as pdist does:
    # (k + 3) u relative error on d^2 each, so 1e-13 on d.
    same = reference < 1
    assert_allclose(cell.distances[same], reference[same], rtol=1e-13)
    # Without the recomputation, |a|^2 + |b|^2 - 2ab would lose ~1e-8 of them.
    centered = cloud - cloud.mean(axis=0)
    naive = (
        (centered**2).sum(1)[:, None] + (centered**2).sum(1) - 2 * centered @ centered.T
    )
    np.fill_diagonal(naive, 0)
    assert np.abs(np.sqrt(np.abs(naive[same])) - reference[same]).max() > 1e-10


def test_block_size_changes_only_the_rounding(generator, rng):
    net = make_mlp(generator)
    batch = rng.normal(size=(23, 2))
    extractor = ActivationExtractor(inputs=batch, output="distances")
    whole = extractor.fit_transform([net])
    for block_size in (1, 5):
        blocked = extractor.set_params(block_size=block_size).fit_transform([net])
        for a, b in zip(whole[0], blocked[0]):
            # Different summation orders of the same float64 dot products of
            # values of order 1: a few ulps.
            assert_allclose(b.distances, a.distances, rtol=0, atol=1e-13)
            assert_array_equal(b.norms, a.norms)


def diagrams_of(steps, X):
    from sklearn.pipeline import make_pipeline

    return make_pipeline(*steps).fit_transform(X)


@pytest.mark.parametrize(
    "method, center",
    [("global", "auto"), ("local", "paper"), ("local", True), ("local", False)],
)
def test_the_distances_pipeline_gives_the_clouds_diagrams(
    generator, rng, method, center
):
    """Same Pipeline, distances instead of clouds: the same diagrams."""
    gudhi = pytest.importorskip("gudhi")
    from sklandscapes import ActivationNormalizer, RipsPersistence

    nets = [make_mlp(generator) for _ in range(2)]
    batch = rng.normal(size=(60, 2))
    if center == "paper":
        center = ~relu_layers(nets[0], batch)
    local = method == "local"
    normalizer = ActivationNormalizer(method=method, center=center)
    rips = RipsPersistence(homology_dimensions=(0, 1), local=local)
    clouds = ActivationExtractor(inputs=batch).fit_transform(nets)
    cells = ActivationExtractor(inputs=batch, output="distances").fit_transform(nets)
    from_clouds = diagrams_of([normalizer, rips], clouds)
    from_cells = diagrams_of([normalizer, rips.set_params(metric="precomputed")], cells)
    assert from_cells.shape == from_clouds.shape
    normalized = normalizer.fit_transform(clouds)
    normalized_cells = normalizer.fit_transform(cells)
    for index in np.ndindex(*normalized.shape):
        difference = np.abs(
            normalized_cells[index].distances - squareform(pdist(normalized[index]))
        )
        if local:
            # The filtration cones off the pairs of exterior points; their
            # projected distances, a function of lengths only, are
            # ill-conditioned for points on one ray (ReLU layers), ~1e-8.
            outside = normalized_cells[index].norms >= 1 - 1e-9
            difference[np.ix_(outside, outside)] = 0
        gap = difference.max()
        # Both paths differ by rounding only: float64 distances of float32
        # activations of order 1, normalized to diameter or median norm 1,
        # and near-duplicate pairs recomputed from differences; a few dozen
        # ulps at most.
        assert gap < 1e-12
        for k in range(2):
            # Rips stability: diagrams move by at most the largest change of
            # an edge length.
            distance = gudhi.bottleneck_distance(
                from_clouds[index + (k,)], from_cells[index + (k,)]
            )
            assert distance <= gap + 1e-15


def test_distances_of_non_finite_activations_name_sample_and_layer(generator, rng):
    good, bad = make_mlp(generator), make_mlp(generator)
    with torch.no_grad():
        bad[2].weight[0, 0] = float("nan")
    message = r"sample 1, layer 2 \('3'\): NaN or inf"
    with pytest.raises(ValueError, match=message):
        ActivationExtractor(
            inputs=rng.normal(size=(4, 2)), output="distances"
        ).fit_transform([good, bad])


def test_distances_of_huge_activations_do_not_overflow(generator, rng):
    net = make_mlp(generator).double()
    batch = rng.normal(size=(6, 2))
    extractor = ActivationExtractor(inputs=batch, output="distances")
    plain = extractor.fit_transform([net])
    huge = extractor.set_params(inputs=np.ldexp(batch, 900)).fit_transform([net])[0, 0]
    # Layer 0 is the input: scaled by 2**900 exactly.
    assert_array_equal(huge.distances, np.ldexp(plain[0, 0].distances, 900))
    assert_array_equal(huge.norms, np.ldexp(plain[0, 0].norms, 900))


def test_distance_cells_pickle_and_bad_output_parameters(generator, rng):
    net = make_mlp(generator)
    cells = ActivationExtractor(
        inputs=rng.normal(size=(5, 2)), output="distances"
    ).fit_transform([net])
    again = pickle.loads(pickle.dumps(cells))
    assert_array_equal(again[0, 1].distances, cells[0, 1].distances)
    assert again[0, 1].nonnegative is cells[0, 1].nonnegative
    with pytest.raises(ValueError, match="'output' parameter"):
        ActivationExtractor(inputs=rng.normal(size=(5, 2)), output="cloud").fit([net])
    with pytest.raises(ValueError, match="'block_size' parameter"):
        ActivationExtractor(inputs=rng.normal(size=(5, 2)), block_size=0).fit([net])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_distances_on_cuda_match_cpu(generator, rng):
    net = randomized(TinyCNN(), generator)
    batch = rng.normal(size=(40, 1, 5, 5))
    options = dict(inputs=batch, output="distances", block_size=16)
    on_cpu = ActivationExtractor(device="cpu", **options).fit_transform([net])
    on_gpu = ActivationExtractor(device="cuda", **options).fit_transform([net])
    for a, b in zip(on_cpu[0], on_gpu[0]):
        # float32 forward passes that sum in another order on CUDA (a few
        # float32 ulps of activations of order 1), then float64 distances.
        assert_allclose(b.distances, a.distances, rtol=1e-5, atol=1e-5)
        assert_allclose(b.norms, a.norms, rtol=1e-5)
        assert b.nonnegative == a.nonnegative


def test_distances_leave_the_callers_batch_as_it_was(generator, rng):
    # float64 rows are scaled by a power of two in blocks: never in place.
    batch = rng.normal(size=(9, 2)) * 40
    before = batch.copy()
    ActivationExtractor(inputs=batch, output="distances", block_size=4).fit_transform(
        [make_mlp(generator)]
    )
    assert_array_equal(batch, before)


def test_equal_points_are_at_distance_exactly_zero(rng):
    # A ReLU layer sends many points to the same place (here the origin and
    # one repeated point); |a|^2 + |b|^2 - 2ab alone would leave ~1e-8.
    points = np.maximum(rng.normal(size=(30, 300)), 0).astype(np.float32)
    points[:10] = 0
    points[10:15] = points[15]
    extractor = ActivationExtractor(
        model=nn.Sequential(nn.Identity()),
        layers=["0"],
        include_input=False,
        output="distances",
    )
    cell = extractor.fit_transform([torch.from_numpy(points)])[0, 0]
    reference = squareform(pdist(points.astype(np.float64)))
    assert_array_equal(cell.distances[reference == 0], 0.0)
    assert (cell.distances[reference > 0] > 0).all()


# ------------------------------------------------------ convolutional networks


class SmallCNN(torch.nn.Module):
    """Two conv blocks with pooling, as for the 8 x 8 digits."""

    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(1, 4, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(4, 6, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.AvgPool2d(2),
        )
        self.head = torch.nn.Sequential(
            torch.nn.Flatten(), torch.nn.Linear(24, 10), torch.nn.Softmax(1)
        )

    def forward(self, x):
        return self.head(self.features(x))


def test_cnn_conv_and_pooling_layers_are_taken_by_auto():
    torch.manual_seed(0)
    net = SmallCNN()
    batch = torch.randn(7, 1, 8, 8)
    names = activation_layers(net, batch)
    # Each block: its ReLU feature maps, then their pooled maps; then logits.
    assert names == ["features.1", "features.2", "features.4", "features.5", "head.1"]
    clouds = ActivationExtractor(inputs=batch).fit_transform([net])[0]
    assert [cloud.shape for cloud in clouds] == [
        (7, 64),  # the image, flattened
        (7, 4 * 8 * 8),
        (7, 4 * 4 * 4),
        (7, 6 * 4 * 4),
        (7, 6 * 2 * 2),
        (7, 10),
    ]
    # Each cloud is the module's output flattened per image, C-major.
    with torch.no_grad():
        pooled = net.features[:3](batch).reshape(7, -1).double().numpy()
        logits = net.head[:2](net.features(batch)).double().numpy()
    assert_allclose(clouds[2], pooled, rtol=0, atol=0)
    assert_allclose(clouds[5], logits, rtol=0, atol=0)
    # Pooled ReLU maps are non-negative, so the paper's rule leaves them as
    # they are, like the ReLU maps themselves.
    assert relu_layers(net, batch).tolist() == [False, True, True, True, True, False]


def test_pooling_without_a_nonlinearity_before_it_is_not_a_layer():
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 2, 3), torch.nn.MaxPool2d(2), torch.nn.Flatten(),
        torch.nn.Linear(18, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2),
    )  # fmt: skip
    assert activation_layers(net, torch.zeros(2, 1, 8, 8)) == ["4", "5"]
