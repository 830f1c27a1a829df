"""ActivationExtractor on networks that apply their nonlinearities as functions.

Forward hooks see only modules; these networks compute their activations with
``F.relu``, ``torch.relu``, ``x.relu()``, ``F.gelu`` or ``F.max_pool2d``, or run
transformer blocks, whose eval-mode fast path is one fused operation.
"""

import threading
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.spatial.distance import pdist, squareform
from scipy.special import erf

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

from sklandscapes.activations import (  # noqa: E402
    ActivationExtractor,
    activation_layers,
    paper_centering,
    relu_layers,
)
from sklandscapes.exceptions import NoHiddenLayerWarning  # noqa: E402

# The networks run in float32 and the NumPy references in float64: with
# activations of order 1 to 10 and at most 8 terms per dot product, float32
# rounding stays below ~1e-6 absolute.
RTOL = ATOL = 1e-5


@pytest.fixture
def generator():
    return torch.Generator().manual_seed(0)


@pytest.fixture
def fastpath():
    """Restores the caller's transformer fast path, whatever a test does."""
    before = torch.backends.mha.get_fastpath_enabled()
    yield
    torch.backends.mha.set_fastpath_enabled(before)


def randomized(module, generator):
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator))
    return module


def numpy_params(linear):
    return (
        linear.weight.detach().double().numpy(),
        linear.bias.detach().double().numpy(),
    )


def as_numpy(tensor):
    return tensor.detach().double().numpy()


class FunctionalMLP(nn.Module):
    """ReLU in three spellings, and a tanh after a ReLU (no layer of its own)."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(2, 4)
        self.fc2 = nn.Linear(4, 3)
        self.fc3 = nn.Linear(3, 3)
        self.out = nn.Linear(3, 2)

    def forward(self, x):
        x = F.relu(self.fc1(x))
        x = torch.relu(self.fc2(x))
        x = torch.tanh(self.fc3(x).relu())
        return self.out(x)


def reference_functional_mlp(net, x):
    (w1, b1), (w2, b2), (w3, b3), (w4, b4) = (
        numpy_params(layer) for layer in (net.fc1, net.fc2, net.fc3, net.out)
    )
    x1 = np.maximum(x @ w1.T + b1, 0)
    x2 = np.maximum(x1 @ w2.T + b2, 0)
    x3 = np.maximum(x2 @ w3.T + b3, 0)
    return [x, x1, x2, x3, np.tanh(x3) @ w4.T + b4]


class FunctionalCNN(nn.Module):
    """Two Conv2d -> F.relu -> F.max_pool2d blocks, for 1 x 8 x 8 images."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 3, 3, padding=1)
        self.conv2 = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 2 * 2, 5)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(torch.relu(self.conv2(x)), 2)
        return F.log_softmax(self.fc(x.flatten(1)), dim=1)


def reference_functional_cnn(net, x):
    """The layers of FunctionalCNN, computed step by step with torch."""
    with torch.no_grad():
        relu1 = torch.relu(net.conv1(x))
        pool1 = F.max_pool2d(relu1, 2)
        relu2 = torch.relu(net.conv2(pool1))
        pool2 = F.max_pool2d(relu2, 2)
        logits = net.fc(pool2.flatten(1))
    return [x, relu1, pool1, relu2, pool2, logits]


class ResidualBlock(nn.Module):
    """A residual block with ReLU modules: hooks alone always saw it."""

    def __init__(self, width):
        super().__init__()
        self.fc1 = nn.Linear(width, width)
        self.act1 = nn.ReLU()
        self.fc2 = nn.Linear(width, width)
        self.act2 = nn.ReLU()

    def forward(self, x):
        return self.act2(x + self.fc2(self.act1(self.fc1(x))))


class ResidualNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Linear(2, 3)
        self.block = ResidualBlock(3)
        self.head = nn.Linear(3, 2)

    def forward(self, x):
        return self.head(self.block(self.stem(x)))


class GELUNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(2, 5)
        self.fc2 = nn.Linear(5, 2)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Act(nn.Module):
    """An activation module of the user's own, which calls a function."""

    def forward(self, x):
        return F.relu(x)


class SharedFunctionalActivation(nn.Module):
    """One such module called at two depths."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(2, 3)
        self.fc2 = nn.Linear(3, 3)
        self.out = nn.Linear(3, 2)
        self.act = Act()

    def forward(self, x):
        return self.out(self.act(self.fc2(self.act(self.fc1(x)))))


def make_encoder(generator, activation="relu"):
    layer = nn.TransformerEncoderLayer(
        8, 2, 16, activation=activation, dropout=0.1, batch_first=True
    )
    encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
    # Small weights keep the attention soft; eval mode is the extractor's.
    with torch.no_grad():
        for parameter in encoder.parameters():
            parameter.copy_(0.3 * torch.randn(parameter.shape, generator=generator))
    return encoder.eval()


def reference_encoder(encoder, x):
    """Each block's feed-forward ReLU and the last linear2, step by step."""
    hidden = []
    torch.backends.mha.set_fastpath_enabled(False)
    with torch.no_grad():
        for layer in encoder.layers:
            attended = layer.self_attn(x, x, x, need_weights=False)[0]
            x = layer.norm1(x + attended)
            hidden.append(torch.relu(layer.linear1(x)))
            last = layer.linear2(hidden[-1])
            x = layer.norm2(x + last)
    return [*hidden, last]


# --- values ------------------------------------------------------------------


def test_functional_mlp_matches_manual_forward(generator, rng):
    net = randomized(FunctionalMLP(), generator)
    batch = rng.normal(size=(9, 2))
    # fc3's output goes through x.relu() and then torch.tanh: the ReLU is the
    # layer (one nonlinearity per affine layer), as with modules.
    assert activation_layers(net, batch) == ["relu:0", "relu:1", "relu:2", "out"]
    out = ActivationExtractor(inputs=batch).fit_transform([net])
    expected = reference_functional_mlp(net, batch)
    assert out.shape == (1, 5)
    for cloud, reference in zip(out[0], expected):
        assert cloud.dtype == np.float64
        assert_allclose(cloud, reference, rtol=RTOL, atol=ATOL)
    # Every ReLU layer is one for the paper's centering rule too.
    assert relu_layers(net, batch).tolist() == [False, True, True, True, False]
    assert paper_centering(net, batch) == (True, False, False, False, True)


def test_functional_cnn_matches_manual_forward(generator, rng):
    net = randomized(FunctionalCNN(), generator)
    batch = torch.from_numpy(rng.normal(size=(6, 1, 8, 8)).astype(np.float32))
    names = activation_layers(net, batch)
    # The log_softmax after the logits is left out, as nn.LogSoftmax would be.
    assert names == ["relu:0", "max_pool2d:0", "relu:1", "max_pool2d:1", "fc"]
    out = ActivationExtractor(inputs=batch).fit_transform([net])
    expected = reference_functional_cnn(net, batch)
    assert [cloud.shape for cloud in out[0]] == [
        (6, 64),
        (6, 3 * 8 * 8),
        (6, 3 * 4 * 4),
        (6, 4 * 4 * 4),
        (6, 4 * 2 * 2),
        (6, 5),
    ]
    # The same float32 operations on the same values: equal bit for bit.
    for cloud, reference in zip(out[0], expected):
        assert_array_equal(cloud, as_numpy(reference).reshape(6, -1))
    # Pooled ReLU maps are non-negative: uncentered, as with modules.
    assert relu_layers(net, batch).tolist() == [False, True, True, True, True, False]


def test_residual_block_with_relu_modules(generator, rng):
    net = randomized(ResidualNet(), generator)
    batch = rng.normal(size=(7, 2))
    assert activation_layers(net, batch) == ["block.act1", "block.act2", "head"]
    out = ActivationExtractor(inputs=batch).fit_transform([net])
    (ws, bs), (w1, b1), (w2, b2), (wh, bh) = (
        numpy_params(layer)
        for layer in (net.stem, net.block.fc1, net.block.fc2, net.head)
    )
    x = batch @ ws.T + bs
    inner = np.maximum(x @ w1.T + b1, 0)
    block = np.maximum(x + inner @ w2.T + b2, 0)
    for cloud, reference in zip(out[0], [batch, inner, block, block @ wh.T + bh]):
        assert_allclose(cloud, reference, rtol=RTOL, atol=ATOL)


def test_gelu_network_matches_manual_forward(generator, rng):
    net = randomized(GELUNet(), generator)
    batch = rng.normal(size=(8, 2))
    assert activation_layers(net, batch) == ["gelu", "fc2"]
    out = ActivationExtractor(inputs=batch).fit_transform([net])
    (w1, b1), (w2, b2) = numpy_params(net.fc1), numpy_params(net.fc2)
    pre = batch @ w1.T + b1
    gelu = 0.5 * pre * (1 + erf(pre / np.sqrt(2)))  # the exact GELU, F.gelu's
    assert_allclose(out[0, 1], gelu, rtol=RTOL, atol=ATOL)
    assert_allclose(out[0, 2], gelu @ w2.T + b2, rtol=RTOL, atol=ATOL)
    # A GELU is no ReLU: its outputs can be negative, so it is centered.
    assert relu_layers(net, batch).tolist() == [False, False, False]


def test_reused_functional_activation_module_is_named_per_call(generator, rng):
    net = randomized(SharedFunctionalActivation(), generator)
    batch = rng.normal(size=(5, 2))
    # A module without submodules that calls F.relu is an activation module:
    # named by its own name, once per call, as nn.ReLU would be.
    assert activation_layers(net, batch) == ["act:0", "act:1", "out"]
    assert relu_layers(net, batch).tolist() == [False, True, True, False]
    out = ActivationExtractor(
        inputs=batch, layers=["act:1", "act:0"], include_input=False
    ).fit_transform([net])
    (w1, b1), (w2, b2) = numpy_params(net.fc1), numpy_params(net.fc2)
    first = np.maximum(batch @ w1.T + b1, 0)
    second = np.maximum(first @ w2.T + b2, 0)
    assert_allclose(out[0, 0], second, rtol=RTOL, atol=ATOL)
    assert_allclose(out[0, 1], first, rtol=RTOL, atol=ATOL)
    with pytest.raises(ValueError, match=r"module 'act' runs 2 times.*'act:1'"):
        ActivationExtractor(inputs=batch, layers=["act"]).fit_transform([net])


class QuickGELU(nn.Module):
    """CLIP's activation: a composite of functions, a layer as a whole."""

    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class ScaledReLU(nn.Module):
    """Non-negative but not a ReLU's output: centered by the paper's rule."""

    def forward(self, x):
        return 2 * F.relu(x)


def test_composite_activation_module_is_one_layer(generator, rng):
    net = randomized(
        nn.Sequential(
            nn.Linear(2, 4), QuickGELU(), nn.Linear(4, 3), ScaledReLU(), nn.Linear(3, 2)
        ),
        generator,
    )
    batch = rng.normal(size=(6, 2))
    assert activation_layers(net, batch) == ["1", "3", "4"]
    out = ActivationExtractor(inputs=batch).fit_transform([net])
    (w1, b1), (w2, b2), (w3, b3) = (numpy_params(net[i]) for i in (0, 2, 4))
    pre = batch @ w1.T + b1
    quick = pre / (1 + np.exp(-1.702 * pre))  # not the sigmoid inside it
    scaled = 2 * np.maximum(quick @ w2.T + b2, 0)
    for cloud, reference in zip(out[0], [batch, quick, scaled, scaled @ w3.T + b3]):
        assert_allclose(cloud, reference, rtol=RTOL, atol=ATOL)
    assert relu_layers(net, batch).tolist() == [False, False, False, False]


@pytest.mark.usefixtures("fastpath")
def test_transformer_encoder_flattened_and_per_token(generator):
    encoder = make_encoder(generator)
    x = torch.randn(5, 6, 8, generator=generator)
    names = activation_layers(encoder, x)
    assert names == ["layers.0.relu", "layers.1.relu", "layers.1.linear2"]
    expected = reference_encoder(encoder, x)

    flat = ActivationExtractor(inputs=x).fit_transform([encoder])[0]
    assert [cloud.shape for cloud in flat] == [(5, 48), (5, 96), (5, 96), (5, 48)]
    assert_array_equal(flat[0], as_numpy(x).reshape(5, -1))
    tokens = ActivationExtractor(inputs=x, token_axis=1).fit_transform([encoder])[0]
    assert [cloud.shape for cloud in tokens] == [(30, 8), (30, 16), (30, 16), (30, 8)]
    # Point i * 6 + t is token t of sequence i.
    assert_array_equal(tokens[0], as_numpy(x).reshape(30, 8))
    # The same float32 operations in the same order: equal up to the order of
    # the matrix products' sums in the two attention calls (rounding, 1e-6).
    for layer, reference in enumerate(expected, start=1):
        assert_allclose(flat[layer], as_numpy(reference).reshape(5, -1), atol=1e-5)
        assert_allclose(tokens[layer], as_numpy(reference).reshape(30, -1), atol=1e-5)
    # The ReLUs of the feed-forward blocks are ReLU layers.
    assert relu_layers(encoder, x).tolist() == [False, True, True, False]


@pytest.mark.usefixtures("fastpath")
@pytest.mark.parametrize(
    "activation, name",
    [("gelu", "layers.0.gelu"), (nn.GELU(), "layers.0.activation")],
)
def test_transformer_activation_function_or_module(generator, activation, name):
    encoder = make_encoder(generator, activation=activation)
    names = activation_layers(encoder, torch.zeros(2, 3, 8))
    assert names[0] == name and len(names) == 3


@pytest.mark.usefixtures("fastpath")
def test_per_token_clouds_keep_one_point_per_input_without_a_token_axis(
    generator,
):
    class Classifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = make_encoder(generator)
            self.head = nn.Linear(8, 3)

        def forward(self, x):
            return self.head(self.encoder(x).mean(dim=1))

    net = Classifier().eval()
    x = torch.randn(4, 5, 8, generator=generator)
    clouds = ActivationExtractor(inputs=x, token_axis=1).fit_transform([net])[0]
    # Tokens for the input and the feed-forward layers; the logits (4, 3)
    # have no token axis, so each input is one point there.
    assert [cloud.shape for cloud in clouds] == [(20, 8), (20, 16), (20, 16), (4, 3)]
    with torch.no_grad():
        logits = net(x)
    # The reference runs on the fast path (fused, another order of float32
    # sums): a few ulps of logits of order 1.
    assert_allclose(clouds[-1], as_numpy(logits), atol=1e-6)


def test_token_axes_of_a_feature_map(generator, rng):
    net = randomized(FunctionalCNN(), generator)
    batch = torch.from_numpy(rng.normal(size=(3, 1, 8, 8)).astype(np.float32))
    clouds = ActivationExtractor(inputs=batch, token_axis=(-2, -1)).fit_transform(
        [net]
    )[0]
    # Each pixel of each image is a point of its channels.
    assert [cloud.shape for cloud in clouds] == [
        (3 * 64, 1),
        (3 * 64, 3),
        (3 * 16, 3),
        (3 * 16, 4),
        (3 * 4, 4),
        (3, 5),
    ]
    relu1 = reference_functional_cnn(net, batch)[1]
    pixels = as_numpy(relu1).transpose(0, 2, 3, 1).reshape(-1, 3)
    assert_array_equal(clouds[1], pixels)


@pytest.mark.parametrize("token_axis", [0, (1, 1), (), True, (1, 2.0)], ids=repr)
def test_bad_token_axis(token_axis):
    extractor = ActivationExtractor(inputs=np.zeros((2, 3, 4)), token_axis=token_axis)
    with pytest.raises(ValueError, match="token_axis"):
        extractor.fit([nn.Linear(4, 2)])


def test_token_axis_beyond_a_layers_dimensions(generator):
    net = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    extractor = ActivationExtractor(inputs=np.zeros((2, 3, 4)), token_axis=3)
    with pytest.raises(
        ValueError, match=r"layer '1' has shape \(2, 3, 3\): token_axis=3 must"
    ):
        extractor.fit_transform([net])


@pytest.mark.usefixtures("fastpath")
@pytest.mark.parametrize("output", ["clouds", "distances"])
def test_batch_size_with_token_axis(generator, output):
    encoder = make_encoder(generator).double()
    x = torch.randn(7, 4, 8, generator=generator, dtype=torch.float64)
    whole, chunked = (
        ActivationExtractor(
            inputs=x, token_axis=1, output=output, batch_size=size
        ).fit_transform([encoder])[0]
        for size in (None, 3)
    )
    for a, b in zip(whole, chunked):
        if output == "distances":
            a, b = a.distances, b.distances
        # float64 networks: chunking changes only the order of BLAS sums.
        assert_allclose(a, b, rtol=1e-12, atol=1e-12)


# --- distances -----------------------------------------------------------------


@pytest.mark.usefixtures("fastpath")
@pytest.mark.parametrize("model", ["cnn", "transformer", "mlp"])
def test_distances_are_the_pairwise_distances_of_the_clouds(generator, rng, model):
    if model == "cnn":
        net = randomized(FunctionalCNN(), generator)
        x = torch.from_numpy(rng.normal(size=(12, 1, 8, 8)).astype(np.float32))
        options = {}
    elif model == "transformer":
        net = make_encoder(generator)
        x = torch.randn(4, 5, 8, generator=generator)
        options = {"token_axis": 1}
    else:
        net = randomized(FunctionalMLP(), generator)
        x = torch.from_numpy(rng.normal(size=(15, 2)).astype(np.float32))
        options = {}
    clouds = ActivationExtractor(inputs=x, **options).fit_transform([net])[0]
    cells = ActivationExtractor(
        inputs=x, output="distances", block_size=5, **options
    ).fit_transform([net])[0]
    assert len(cells) == len(clouds)
    for cloud, cell in zip(clouds, cells):
        # Both from the same float32 activations; ours within a relative
        # 1e-8 of the exact squared distance (Notes), pdist's far closer.
        reference = squareform(pdist(cloud))
        assert_allclose(cell.distances, reference, rtol=1e-7, atol=1e-12)
        assert cell.nonnegative == bool((cloud >= 0).all())


# --- names and selection -------------------------------------------------------


@pytest.mark.usefixtures("fastpath")
def test_select_functional_layers_by_name(generator):
    encoder = make_encoder(generator)
    x = torch.randn(3, 4, 8, generator=generator)
    out = ActivationExtractor(
        inputs=x, layers=["layers.1.relu", "layers.0.linear1"], include_input=False
    ).fit_transform([encoder])[0]
    hidden = reference_encoder(encoder, x)[1]
    assert_allclose(out[0], as_numpy(hidden).reshape(3, -1), atol=1e-5)
    # A module is still a layer by its own name: the first block's linear1,
    # whose ReLU is layer "layers.0.relu".
    first = reference_encoder(encoder, x)[0]
    assert_allclose(np.maximum(out[1], 0), as_numpy(first).reshape(3, -1), atol=1e-5)
    # Indices count into the "auto" list, functions included.
    last = ActivationExtractor(inputs=x, layers=[1], include_input=False)
    assert_array_equal(last.fit_transform([encoder])[0, 0], out[0])


@pytest.mark.usefixtures("fastpath")
def test_unknown_names_list_the_functions_too(generator):
    encoder = make_encoder(generator)
    extractor = ActivationExtractor(
        inputs=torch.zeros(2, 3, 8), layers=["layers.0.rel"]
    )
    with pytest.raises(
        ValueError, match=r"unknown layer 'layers.0.rel'.*Did you mean 'layers.0.relu'"
    ):
        extractor.fit_transform([encoder])
    # A function that does not run there (the blocks use ReLU, not GELU).
    extractor.set_params(layers=["layers.0.gelu"])
    with pytest.raises(
        ValueError, match=r"unknown layer 'layers.0.gelu'.*'layers.0.relu'"
    ):
        extractor.fit_transform([encoder])


def test_a_function_named_like_a_submodule_gets_parentheses(generator, rng):
    class Both(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(2, 3)
            self.relu = nn.ReLU()
            self.fc2 = nn.Linear(3, 3)
            self.out = nn.Linear(3, 2)

        def forward(self, x):
            return self.out(F.relu(self.fc2(self.relu(self.fc1(x)))))

    net = randomized(Both(), generator)
    batch = rng.normal(size=(4, 2))
    assert activation_layers(net, batch) == ["relu", "relu()", "out"]
    out = ActivationExtractor(inputs=batch, layers=["relu()"]).fit_transform([net])
    (w1, b1), (w2, b2) = numpy_params(net.fc1), numpy_params(net.fc2)
    expected = np.maximum(np.maximum(batch @ w1.T + b1, 0) @ w2.T + b2, 0)
    assert_allclose(out[0, 1], expected, rtol=RTOL, atol=ATOL)


def test_a_function_of_the_weights_alone_is_no_layer(generator, rng):
    class Gated(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 3)
            self.gate = nn.Parameter(torch.zeros(3))
            self.out = nn.Linear(3, 2)

        def forward(self, x):
            # sigmoid(gate) has no row per point: not an activation.
            return self.out(torch.sigmoid(self.gate) * F.relu(self.fc(x)))

    net = Gated()
    assert activation_layers(net, rng.normal(size=(3, 2))) == ["relu", "out"]


class GatedAfter(nn.Module):
    """A sigmoid gate on a parameter as wide as the batch is long."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 16)
        self.gate = nn.Parameter(torch.zeros(16))
        self.out = nn.Linear(16, 2)

    def forward(self, x):
        return self.out(F.relu(self.fc(x) * torch.sigmoid(self.gate)))


def test_a_gate_as_wide_as_the_batch_is_no_layer(generator, rng):
    net = randomized(GatedAfter(), generator)
    # 16 points: sigmoid(gate) has one row per point, but is of the weights.
    batch = rng.normal(size=(16, 2))
    assert activation_layers(net, batch) == ["relu", "out"]
    (w, b), gate = numpy_params(net.fc), as_numpy(net.gate)
    hidden = np.maximum((batch @ w.T + b) / (1 + np.exp(-gate)), 0)
    out = ActivationExtractor(inputs=batch).fit_transform([net])
    assert_allclose(out[0, 1], hidden, rtol=RTOL, atol=ATOL)
    # Chunks of 16 and 4 points take the same layers, whole or in chunks.
    batch = rng.normal(size=(20, 2))
    whole = ActivationExtractor(inputs=batch).fit_transform([net])
    chunked = ActivationExtractor(inputs=batch, batch_size=16).fit_transform([net])
    for cloud, reference in zip(chunked[0], whole[0]):
        assert_allclose(cloud, reference, rtol=RTOL, atol=ATOL)


class Marks(nn.Module):
    """Ways in which a tensor is, or is not, computed from the batch."""

    def __init__(self, way):
        super().__init__()
        self.way = way
        self.fc = nn.Linear(2, 4)
        self.gate = nn.Parameter(torch.zeros(4, 4))
        self.lstm = nn.LSTM(4, 4, batch_first=True)
        self.out = nn.Linear(4, 2)

    def forward(self, x):
        h = self.fc(x)
        if self.way == "setitem":  # written into a buffer of zeros
            buffer = torch.zeros(len(x), 4)
            buffer[:, :] = h
            h = torch.tanh(buffer)
        elif self.way == "chunk":  # a tuple output
            first, second = torch.cat([h, h], dim=1).chunk(2, dim=1)
            h = torch.tanh(second)
        elif self.way == "lstm":  # a module's nested tuple output
            h = torch.tanh(self.lstm(h[:, None])[0][:, 0])
        elif self.way == "to":  # the gate in x's dtype, of the weights alone
            h = h + torch.tanh(self.gate.to(x))
        elif self.way == "expand_as":  # the gate in h's shape, of the weights
            h = h + torch.tanh(self.gate[0].expand_as(h))
        elif self.way == "zeros_like":
            h = h + torch.tanh(torch.zeros_like(h))
        return self.out(h)


@pytest.mark.parametrize(
    "way, names",
    [
        ("setitem", ["tanh", "out"]),
        ("chunk", ["tanh", "out"]),
        ("lstm", ["tanh", "out"]),
        # 4 points: each of these tanh has one row per point, of no point.
        ("to", ["out"]),
        ("expand_as", ["out"]),
        ("zeros_like", ["out"]),
    ],
)
def test_what_is_computed_from_the_batch(way, names, generator, rng):
    net = randomized(Marks(way), generator)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoHiddenLayerWarning)
        assert activation_layers(net, rng.normal(size=(4, 2))) == names


class Attention(nn.Module):
    """A hand-written single-head self-attention."""

    def __init__(self):
        super().__init__()
        self.q, self.k, self.v = nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 4)

    def weights(self, x):
        return torch.softmax(self.q(x) @ self.k(x).transpose(1, 2) / 2, dim=-1)

    def forward(self, x):
        return self.weights(x) @ self.v(x)


class AttentionNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = Attention()
        self.fc = nn.Linear(4, 4)
        self.head = nn.Linear(12, 2)

    def forward(self, x):  # x: (n, 3 tokens, 4)
        return self.head(F.relu(self.fc(self.attn(x))).flatten(1))


def test_a_hand_written_attention_softmax_is_no_layer(generator):
    net = randomized(AttentionNet(), generator)
    x = torch.randn(5, 3, 4, generator=generator)
    # The softmax makes the (n, T, T) attention weights: no activation.
    assert activation_layers(net, x) == ["relu", "head"]
    # It is still a layer by its name.
    out = ActivationExtractor(inputs=x, layers=["attn.softmax"], include_input=False)
    with torch.no_grad():
        weights = net.attn.weights(x)
    assert_allclose(
        out.fit_transform([net])[0, 0],
        as_numpy(weights).reshape(5, -1),
        rtol=RTOL,
        atol=ATOL,
    )


def test_inplace_functional_relu(generator, rng):
    class InPlace(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(2, 4)
            self.fc2 = nn.Linear(4, 3)

        def forward(self, x):
            # In place after the last Linear too: the logits are its output
            # before that ReLU overwrites it.
            return self.fc2(self.fc1(x).relu_()).relu_()

    net = randomized(InPlace(), generator)
    batch = rng.normal(size=(20, 2))
    assert activation_layers(net, batch) == ["relu:0", "fc2"]
    out = ActivationExtractor(inputs=batch).fit_transform([net])
    (w1, b1), (w2, b2) = numpy_params(net.fc1), numpy_params(net.fc2)
    hidden = np.maximum(batch @ w1.T + b1, 0)
    logits = hidden @ w2.T + b2
    assert (logits < 0).any()  # otherwise the test could not tell
    assert_allclose(out[0, 1], hidden, rtol=RTOL, atol=ATOL)
    assert_allclose(out[0, 2], logits, rtol=RTOL, atol=ATOL)


# --- warnings and errors -------------------------------------------------------


def test_no_hidden_layer_warns_naming_what_was_searched(rng):
    class Clamped(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(2, 3)
            self.fc2 = nn.Linear(3, 2)

        def forward(self, x):
            return self.fc2(torch.clamp(self.fc1(x), min=0))

    batch = rng.normal(size=(4, 2))
    message = r"no hidden layer.*'fc2'.*relu, relu6.*gelu.*max_pool2d.*Linear"
    with pytest.warns(NoHiddenLayerWarning, match=message) as caught:
        names = activation_layers(Clamped(), batch)
    assert names == ["fc2"]
    with pytest.warns(NoHiddenLayerWarning, match=message) as caught:
        ActivationExtractor(inputs=batch).fit_transform([Clamped()])
    # The warning points at the caller, not inside sklandscapes or sklearn.
    assert caught[0].filename == __file__
    # Named layers are the user's choice: no warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error", NoHiddenLayerWarning)
        ActivationExtractor(inputs=batch, layers=["fc1"]).fit_transform([Clamped()])
        ActivationExtractor(inputs=batch).fit_transform([FunctionalMLP()])


def test_forward_failure_names_the_batch_shape(generator):
    encoder = make_encoder(generator)
    # Token vectors of width 7 for a model of width 8.
    with pytest.raises(
        ValueError,
        match=r"sample 0: the forward pass failed on inputs of shape \(2, 3, 7\)",
    ):
        ActivationExtractor(inputs=torch.zeros(2, 3, 7)).fit_transform([encoder])


class FastPathSpy(nn.Module):
    """Records the transformer fast-path switch during its forward."""

    def __init__(self, fail=False):
        super().__init__()
        self.fc1 = nn.Linear(2, 3)
        self.fc2 = nn.Linear(3, 2)
        self.fail = fail
        self.seen = []

    def forward(self, x):
        self.seen.append(torch.backends.mha.get_fastpath_enabled())
        if self.fail:
            raise RuntimeError("boom")
        return self.fc2(F.relu(self.fc1(x)))


@pytest.mark.usefixtures("fastpath")
@pytest.mark.parametrize("enabled", [True, False])
def test_fast_path_is_off_during_extraction_and_restored(rng, enabled):
    torch.backends.mha.set_fastpath_enabled(enabled)
    spy = FastPathSpy()
    ActivationExtractor(inputs=rng.normal(size=(3, 2))).fit_transform([spy])
    assert spy.seen == [False]
    assert torch.backends.mha.get_fastpath_enabled() is enabled
    failing = FastPathSpy(fail=True)
    with pytest.raises(ValueError, match="forward pass failed.*boom"):
        ActivationExtractor(inputs=rng.normal(size=(3, 2))).fit_transform([failing])
    assert failing.seen == [False]
    assert torch.backends.mha.get_fastpath_enabled() is enabled
    relu_layers(spy, rng.normal(size=(3, 2)))
    assert spy.seen[-1] is False
    assert torch.backends.mha.get_fastpath_enabled() is enabled


# --- GPU -----------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.usefixtures("fastpath")
@pytest.mark.parametrize("output", ["clouds", "distances"])
def test_functional_layers_on_cuda_match_cpu(generator, output):
    encoder = make_encoder(generator)
    x = torch.randn(6, 5, 8, generator=generator)
    options = dict(inputs=x, token_axis=1, output=output)
    on_cpu = ActivationExtractor(device="cpu", **options).fit_transform([encoder])
    on_gpu = ActivationExtractor(device="cuda", **options).fit_transform([encoder])
    assert activation_layers(encoder.cuda(), x)[0] == "layers.0.relu"
    for a, b in zip(on_cpu[0], on_gpu[0]):
        if output == "distances":
            a, b = a.distances, b.distances
        # float32 forward passes that sum in another order on CUDA: a few
        # float32 ulps of activations of order 1.
        assert_allclose(b, a, rtol=1e-4, atol=1e-4)
    assert torch.backends.mha.get_fastpath_enabled()


@pytest.mark.usefixtures("fastpath")
def test_fast_path_stays_off_while_another_thread_extracts(rng):
    # The switch is global: the first extraction to end must not switch it
    # back on under one still running in another thread.
    torch.backends.mha.set_fastpath_enabled(True)
    both_inside = threading.Barrier(2, timeout=30)
    first_done = threading.Event()

    class Waiting(FastPathSpy):
        def __init__(self, wait):
            super().__init__()
            self.wait = wait

        def forward(self, x):
            both_inside.wait()
            if self.wait:
                first_done.wait(30)
            return super().forward(x)

    first, second = Waiting(wait=False), Waiting(wait=True)
    batch = rng.normal(size=(3, 2))

    def extract(net):
        ActivationExtractor(inputs=batch, layers=[-1]).fit_transform([net])
        if net is first:
            first_done.set()

    threads = [threading.Thread(target=extract, args=(net,)) for net in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert first.seen == [False] and second.seen == [False]
    assert torch.backends.mha.get_fastpath_enabled() is True
