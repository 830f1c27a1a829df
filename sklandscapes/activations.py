"""Activations of every layer of a neural network, as layered point clouds.

This is the only place where sklandscapes runs a network forward. PyTorch is
imported inside the functions, so ``import sklandscapes`` works without it.
"""

import contextlib
import copy
import difflib
import functools
import os
import sys
import warnings
from collections import Counter
from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from sklandscapes._base import StatelessTransformerMixin
from sklandscapes._compat import HasMethods, Interval, StrOptions, _fit_context
from sklandscapes._devices import check_device, resolve_device
from sklandscapes._distances import LayerDistances
from sklandscapes._forward import (
    ACTIVATION_FUNCTIONS,
    ForwardRecord,
    transformer_fastpath_disabled,
)
from sklandscapes._validation import _raise_if_errors
from sklandscapes.exceptions import NoHiddenLayerWarning

__all__ = [
    "ActivationExtractor",
    "activation_layers",
    "paper_centering",
    "relu_layers",
]

# Name of the cloud of the input batch itself (the paper's x^(0)).
_INPUT_NAME = "input"

# With output="distances" and block_size=None, a block of points converted to
# float64 holds at most this many values (16 MiB).
_BLOCK_VALUES = 2**21

# |a|^2 + |b|^2 - 2ab is trusted where its error bound, (2k + 10) u (|a|^2 +
# |b|^2), is at most this fraction of the result; closer pairs (such as the
# many points a ReLU layer sends to the same place) are recomputed from their
# differences.
_GRAM_RTOL = 1e-8
_UNIT_ROUNDOFF = 2.0**-53


def _import_torch():
    try:
        import torch
    except ImportError as exc:
        raise ImportError(
            "Extracting activations needs PyTorch: "
            'pip install "sklandscapes[torch]" (or pip install torch).'
        ) from exc
    return torch


class _ForwardError(ValueError):
    """An error raised from inside our own hooks, passed on without rewrapping."""


class ActivationExtractor(StatelessTransformerMixin, TransformerMixin, BaseEstimator):
    """Activations of every layer of a network, one point cloud per layer.

    Exactly one of ``inputs`` and ``model`` is set; it is held fixed while X
    varies:

    - ``inputs=batch``: X is a sequence of networks and each sample is one
      network seen on ``batch``. This is the paper's setting (one sample per
      network and training threshold).
    - ``model=network``: X is a sequence of input batches and each sample is
      ``network`` seen on one batch.

    A network is a ``torch.nn.Module``, a fitted skorch ``NeuralNet`` (its
    ``module_`` is used) or the path of a snapshot written by
    :mod:`sklandscapes.nets`. The activations are read where the network
    computes them: the outputs of its modules (forward hooks) and of the
    activation and pooling functions its ``forward`` calls (``F.relu``,
    ``torch.tanh``, ``x.relu()``, ``F.max_pool2d``, ...; seen through a
    :class:`torch.overrides.TorchFunctionMode`). Stateless: ``fit`` only
    validates the parameters and X.

    Parameters
    ----------
    inputs : array-like or torch.Tensor of shape (n_points, ...), default=None
        The batch every network of X is run on. Cast to the network's parameter
        dtype and moved to its device.
    model : torch.nn.Module, fitted skorch NeuralNet, str or os.PathLike, \
            default=None
        The network every batch of X is run through. Prefer ``net.module_`` to
        a skorch net here: :func:`sklearn.base.clone` (hence ``GridSearchCV``)
        returns an unfitted copy of a skorch net.
    layers : "auto" or list of str and int, default="auto"
        Which activations to take, in this order:

        - ``"auto"``: the output of every nonlinearity (an activation module
          or function) that follows an affine module (``Linear``,
          ``Conv1d/2d/3d``, ``Bilinear``), and of the first pooling (module or
          function: ``MaxPool2d``, ``F.avg_pool2d``, ...) after such a
          nonlinearity, then the output of the last affine module (the
          logits), in the order they run: the paper's x^(1), ..., x^(D). See
          Notes.
        - a list of layer names and/or of integer indices into the ``"auto"``
          list (negative ones count from the end: ``-1`` is the logits). A
          name is a module's name from ``named_modules()`` (any module, not
          only affine or nonlinear ones) or that of an activation or pooling
          function call: the name of the module whose ``forward`` calls it,
          a dot and the function (``"layers.0.relu"`` for ``F.relu`` in
          ``layers.0``), or the function alone in the network's own
          ``forward`` (``"relu"``). A module or function call that runs
          several times in one forward pass is named once per call:
          ``"act:0"``, ``"act:1"``, ... An unknown name is an error that lists
          the names found.

        :func:`activation_layers` lists the ``"auto"`` names of a network.
    include_input : bool, default=True
        Put the input batch itself first, as layer 0 (the paper's x^(0)).
    device : str, default="auto"
        Where the forward pass runs. ``"auto"``: CUDA when available, else the
        network's own device. Otherwise a torch device string such as
        ``"cpu"``, ``"cuda"`` or ``"cuda:1"``. A network on another device is
        copied there; the caller's network is never moved.
    batch_size : int, default=None
        Run the forward pass on this many points at a time, to bound memory.
        The result does not depend on it. ``None``: the whole batch at once.
    output : {"clouds", "distances"}, default="clouds"
        What each cell holds:

        - ``"clouds"``: the activations, a float64 array (n_points, width).
        - ``"distances"``: a :class:`~sklandscapes.LayerDistances`, the
          pairwise Euclidean distances of the activations with their norms
          (to the origin and to the mean) and their sign, computed in torch
          on the forward pass's device from the activations as it gives them
          (float32, say), in blocks: the float64 cloud is never formed. For
          wide layers (a feature map of 1,000 images x 16,384 features is
          131 MB in float64). :class:`~sklandscapes.ActivationNormalizer` and
          ``RipsPersistence(metric="precomputed")`` take these cells, also for
          local homology, and give the diagrams of the clouds. See Notes.
    block_size : int, default=None
        With ``output="distances"``: the distances are computed between
        blocks of this many points, so that two blocks in float64
        (``2 * block_size * width * 8`` bytes) and their distances are the
        only extra memory on the device. It changes the result only by
        rounding (the order of float64 sums). ``None``: blocks of at most
        16 MiB each (2**21 values). Ignored with ``output="clouds"``.
    token_axis : int, tuple of int or None, default=None
        What a point of a layer with a token or spatial axis is:

        - ``None``: one point per input, all other axes flattened into its
          features: a ``(n_points, n_tokens, d)`` output is a cloud of
          ``n_points`` points in R^(n_tokens * d), a ``(n_points, C, H, W)``
          feature map one in R^(C * H * W).
        - the token axis, or a tuple of them: one point per input and token,
          the remaining axes flattened into its features. ``token_axis=1``
          makes each token of a batch-first transformer's ``(n_points,
          n_tokens, d)`` activations a point of R^d (``n_points * n_tokens``
          points, those of input 0 first); ``token_axis=(-2, -1)`` makes each
          pixel of a ``(n_points, C, H, W)`` map a point of R^C. It applies to
          every cloud, the input batch's included, with at least two
          dimensions more than the token axes; the others (a classifier's
          logits, say) keep one point per input.

    See Also
    --------
    activation_layers : The layer names that ``layers="auto"`` picks.
    ActivationNormalizer : Normalizes the clouds (the paper's step 1).
    RipsPersistence : Vietoris-Rips persistence of each cloud.

    Notes
    -----
    The output is an object array of shape (n_samples, n_layers) whose cells
    are float64 arrays of shape (n_points, width): one row per input point, in
    the order of the batch. Feature maps are flattened per point, so a
    ``(n_points, C, H, W)`` output becomes ``(n_points, C * H * W)``.

    With ``layers="auto"`` the order is the order in which the modules run in
    a forward pass (read with hooks), not the order of ``named_modules()``.
    Consecutive affine layers with no nonlinearity between them count as one
    layer (their composite is affine). The last layer is always the output of
    the last affine layer: a nonlinearity after it (a sigmoid, say) is left
    out, as the paper's x^(D) is the logits. In a convolutional network a
    block ``Conv2d -> ReLU -> MaxPool2d`` gives two layers, the feature maps
    and their pooled maps. The rule is the same whether a module or a
    function computes the nonlinearity or the pooling. The functions are
    those of the ``torch.nn`` activation and pooling modules (``relu``,
    ``relu6``, ``leaky_relu``, ``elu``, ``gelu``, ``silu``, ``sigmoid``,
    ``tanh``, ``softplus``, ..., ``max_pool2d``, ``avg_pool2d``,
    ``adaptive_avg_pool2d``, ...) in any spelling (``F.relu``,
    ``torch.relu``, ``x.relu()``, in place or not), applied to a tensor
    computed from the batch (the batch, or what torch functions and modules
    compute from it), with one row per input point in their output: a
    function of the weights alone (a sigmoid of a gate parameter) is no
    layer, whatever its shape. A tensor made from the batch outside torch
    (through NumPy) does not count as computed from it. Those that a
    ``torch.nn`` activation, pooling, affine or attention module calls to
    compute its own output are not layers of their own. A module of the
    user's own without submodules whose ``forward`` calls these functions (a
    QuickGELU, ``x * torch.sigmoid(1.702 * x)``) is an activation module: its
    output is the layer, under its name. The same composite written inline in
    a larger ``forward`` gives the function's output (the sigmoid) instead;
    wrap it in a module. A nonlinearity computed in another way (``torch.clamp(x,
    min=0)``) is not seen: when ``"auto"`` finds no hidden layer it issues a
    :class:`~sklandscapes.exceptions.NoHiddenLayerWarning`. A function call
    whose name is also a submodule's has ``"()"`` appended (``"relu()"``).

    The softmax family (``softmax``, ``softmin``, ``log_softmax`` and the
    modules ``nn.Softmax``, ``nn.Softmin``, ``nn.LogSoftmax``,
    ``nn.Softmax2d``) is never taken by ``"auto"``: it turns scores into
    probabilities (a classifier's last step, the weights of a hand-written
    attention), it is not a layer's activation function. Such a call is
    still a layer by its name (``layers=["attn.softmax"]``).

    Transformer blocks (``nn.TransformerEncoderLayer``) run in eval mode as
    one fused operation, inside which nothing can be seen; PyTorch's
    transformer fast path (``torch.backends.mha``) is therefore switched off
    during the forward pass and switched back afterwards, also when the pass
    fails. The blocks' ``activation`` then gives one layer per block
    (``"layers.0.relu"``, ...).

    The forward pass runs under ``torch.inference_mode()`` with the network in
    eval mode; the training flag of every submodule is restored afterwards,
    also when the pass fails, and every hook is removed. Non-finite
    activations (a diverged network) raise a ``ValueError`` naming the sample
    and the layer.

    With ``output="distances"``, the activations of a layer are centered on
    their mean (computed in float64), then each block of squared distances is
    ``|a|^2 + |b|^2 - 2 a.b`` for the centered points ``a``, ``b``, with every
    product and sum in float64 (a matrix product on the device). Its rounding
    error is at most ``B = (2 k + 10) u (|a|^2 + |b|^2)`` for ``k`` features
    and ``u = 2**-53``, which is large relative to the squared distance of two
    points much closer to each other than to the mean. Every pair whose
    result is below ``1e8 B`` is therefore recomputed from the difference of
    its two points, as :func:`scipy.spatial.distance.pdist` does (error
    ``(k + 3) u d^2``): each squared distance is within a relative ``1e-8``
    of the exact one, and equal points (the many that a ReLU layer sends to
    the origin) get distance exactly 0. Only near-duplicate pairs are
    recomputed (``d`` below about 3% of the points' distance to the mean
    for ``k = 16384``). The input layer is taken from the batch as given, in
    its own precision. ``norms`` and ``centered_norms`` are computed from the
    activations in float64 (error a few ulps), the diagonal is exactly 0 and
    the matrix exactly symmetric. Rips diagrams move by at most the largest
    error of a distance (stability), so they match the cloud path's to that
    bound.

    References
    ----------
    .. [1] M. Wheeler, J. Bouza, P. Bubenik. "Activation Landscapes as a
       Topological Summary of Neural Network Performance", IEEE Big Data 2021.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from sklandscapes import ActivationExtractor, activation_layers
    >>> _ = torch.manual_seed(0)
    >>> net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2))
    >>> batch = torch.randn(5, 2)

    One sample per network, each seen on the same batch:

    >>> clouds = ActivationExtractor(inputs=batch).fit_transform([net, net])
    >>> clouds.shape
    (2, 3)
    >>> [cloud.shape for cloud in clouds[0]]
    [(5, 2), (5, 3), (5, 2)]

    One sample per batch, all seen by the same network:

    >>> extractor = ActivationExtractor(model=net, layers=[-1], include_input=False)
    >>> clouds = extractor.fit_transform([batch, batch[:4]])
    >>> [cloud.shape for cloud in clouds[:, 0]]
    [(5, 2), (4, 2)]

    Pairwise distances and norms instead of clouds, for wide layers; the same
    normalization and Rips steps take them:

    >>> from sklearn.pipeline import make_pipeline
    >>> from sklandscapes import ActivationNormalizer, RipsPersistence
    >>> extractor = ActivationExtractor(inputs=batch, output="distances")
    >>> cells = extractor.fit_transform([net])
    >>> cells[0, 1], cells[0, 1].distances.shape
    (LayerDistances(n_points=5), (5, 5))
    >>> steps = make_pipeline(
    ...     ActivationNormalizer(method="local", center=~relu_layers(net, batch)),
    ...     RipsPersistence(local=True, metric="precomputed"),
    ... )
    >>> steps.fit_transform(cells).shape
    (1, 3, 1)

    A transformer encoder, whose blocks apply their activation as a function;
    ``token_axis=1`` makes each token a point:

    >>> encoder = nn.TransformerEncoder(
    ...     nn.TransformerEncoderLayer(8, 2, 16, batch_first=True), 2,
    ...     enable_nested_tensor=False)
    >>> sequences = torch.randn(5, 6, 8)  # 5 sequences of 6 tokens
    >>> activation_layers(encoder, sequences)
    ['layers.0.relu', 'layers.1.relu', 'layers.1.linear2']
    >>> clouds = ActivationExtractor(inputs=sequences, token_axis=1).fit_transform(
    ...     [encoder])
    >>> [cloud.shape for cloud in clouds[0]]
    [(30, 8), (30, 16), (30, 16), (30, 8)]
    """

    _parameter_constraints = {
        "inputs": ["array-like", None],
        "model": [HasMethods(["forward"]), str, os.PathLike, None],
        "layers": [StrOptions({"auto"}), "array-like"],
        "include_input": ["boolean"],
        "device": [str],
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
        "output": [StrOptions({"clouds", "distances"})],
        "block_size": [Interval(Integral, 1, None, closed="left"), None],
        "token_axis": [Integral, tuple, None],
    }

    def __init__(
        self,
        inputs=None,
        model=None,
        layers="auto",
        include_input=True,
        device="auto",
        batch_size=None,
        output="clouds",
        block_size=None,
        token_axis=None,
    ):
        self.inputs = inputs
        self.model = model
        self.layers = layers
        self.include_input = include_input
        self.device = device
        self.batch_size = batch_size
        self.output = output
        self.block_size = block_size
        self.token_axis = token_axis

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Validate the parameters and X; learns nothing.

        Parameters
        ----------
        X : sequence
            Networks when ``inputs`` is set, input batches when ``model`` is.
        y : None
            Ignored.

        Returns
        -------
        self : ActivationExtractor
        """
        torch = _import_torch()
        self._check_params(torch)
        self._check_X(X, torch)
        return self

    def transform(self, X):
        """Run every sample forward and collect the activations of each layer.

        Parameters
        ----------
        X : sequence
            Networks when ``inputs`` is set, input batches when ``model`` is.

        Returns
        -------
        clouds : object array of shape (n_samples, n_layers)
            Cell ``(i, l)`` is a float64 array of shape (n_points, width_l):
            the activations of layer ``l`` for sample ``i``; with
            ``output="distances"``, their
            :class:`~sklandscapes.LayerDistances`.
        """
        check_is_fitted(self)
        torch = _import_torch()
        # Stateless: transform may be called without fit, so it validates too.
        self._validate_params()
        self._check_params(torch)
        samples = self._check_X(X, torch)
        layers = self.layers if isinstance(self.layers, str) else list(self.layers)
        options = dict(
            layers=layers,
            include_input=self.include_input,
            device=self.device,
            batch_size=self.batch_size,
            output=self.output,
            block_size=self.block_size,
            token_axis=self.token_axis,
            torch=torch,
        )

        if self.inputs is not None:
            # A generator, so that only one loaded snapshot is alive at a time.
            pairs = (
                (_load_network(network, f"sample {i}"), self.inputs)
                for i, network in enumerate(samples)
            )
        else:
            module = _load_network(self.model, "model")
            pairs = ((module, batch) for batch in samples)
        names, rows = [], []
        for i, (module, batch) in enumerate(pairs):
            layer_names, clouds = _extract(
                module, batch, where=f"sample {i}", **options
            )
            names.append(layer_names)
            rows.append(clouds)
        _check_layer_counts(names)
        _check_finite(names, rows)
        if isinstance(layers, str) and len(names[0]) == 1 + bool(self.include_input):
            _warn_no_hidden_layer(names[0][-1], "sample 0")

        out = np.empty((len(rows), len(rows[0])), dtype=object)
        for i, clouds in enumerate(rows):
            for layer, cloud in enumerate(clouds):
                out[i, layer] = cloud
        return out

    def _check_params(self, torch):
        if (self.inputs is None) == (self.model is None):
            given = "both are set" if self.inputs is not None else "neither is set"
            raise ValueError(
                "Set exactly one of `inputs` (X is then a sequence of networks) "
                f"and `model` (X is then a sequence of input batches); {given}."
            )
        if self.inputs is not None:
            problem = _batch_problem(self.inputs)
            if problem:
                raise ValueError(f"`inputs` {problem}.")
        if not isinstance(self.layers, str):
            _check_layer_list(self.layers)
        _check_token_axis(self.token_axis)
        check_device(self.device)

    def _check_X(self, X, torch):
        """X as a list of samples, or a ValueError listing every bad one."""
        what = "networks" if self.inputs is not None else "input batches"
        if _is_single_network(X, torch) or (
            self.model is not None and len(getattr(X, "shape", ())) == 2
        ):
            raise ValueError(
                f"X must be a sequence of {what}, got a single "
                f"{type(X).__name__}; wrap it in a list: [X]."
            )
        if isinstance(X, dict):
            raise ValueError(
                f"X must be a sequence of {what}, got a dict; pass "
                "list(X.values()) to use its values."
            )
        if isinstance(X, str) or not hasattr(X, "__len__"):
            raise ValueError(f"X must be a sequence of {what}, got {type(X).__name__}.")
        samples = list(X)
        if not samples:
            raise ValueError(f"X is empty; expected a sequence of {what}.")
        errors = []
        for i, sample in enumerate(samples):
            if self.inputs is not None:
                if not _is_network(sample, torch):
                    errors.append(
                        f"sample {i}: expected a torch.nn.Module, a fitted skorch "
                        f"NeuralNet or a snapshot path, got {type(sample).__name__}"
                    )
            else:
                problem = _batch_problem(sample)
                if problem:
                    errors.append(f"sample {i}: the batch {problem}")
        _raise_if_errors(errors, f"{what} in X")
        return samples

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # X holds networks or batches; the output is clouds, not a matrix.
        tags.transformer_tags.preserves_dtype = []
        return tags


def activation_layers(network, inputs=None):
    """Names of the layers that ``layers="auto"`` picks, in forward order.

    These are the columns of :class:`ActivationExtractor`'s output after the
    input (layer 0, when ``include_input=True``).

    Parameters
    ----------
    network : torch.nn.Module, fitted skorch NeuralNet, str or os.PathLike
        The network, or the path of a snapshot.
    inputs : array-like or torch.Tensor of shape (n_points, ...), default=None
        A batch to run forward, since the order is read from a forward pass; a
        few points suffice. ``None`` is allowed when the first affine module of
        ``named_modules()`` is a ``Linear``: a batch of zeros is used.

    Returns
    -------
    names : list of str
        Module names from ``named_modules()``, and names of activation or
        pooling function calls (the calling module's name, a dot and the
        function, as in :class:`ActivationExtractor`), with ``":k"`` appended
        for the ``k``-th call of one that runs several times.

    Warns
    -----
    NoHiddenLayerWarning
        When the network has no hidden layer that ``"auto"`` recognises, only
        the logits.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from sklandscapes import activation_layers
    >>> net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2), nn.Softmax(1))
    >>> activation_layers(net)
    ['1', '2']

    Activations applied as functions are layers too, named where they are
    called:

    >>> class Block(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.fc = nn.Linear(3, 3)
    ...     def forward(self, x):
    ...         return torch.nn.functional.gelu(self.fc(x))
    >>> net = nn.Sequential(nn.Linear(2, 3), Block(), Block(), nn.Linear(3, 2))
    >>> activation_layers(net)
    ['1.gelu', '2.gelu', '3']
    """
    torch = _import_torch()
    module = _load_network(network, "network")
    kinds = _layer_kinds(module, torch)
    guessed = inputs is None
    if guessed:
        inputs = _guess_inputs(module, torch)
    elif problem := _batch_problem(inputs):
        raise ValueError(f"`inputs` {problem}.")
    device = _module_device(module, torch)
    with _running(module, device, torch) as running:
        x = _as_network_input(inputs, running, device, "network", torch)
        try:
            record = _record_forward(
                running, x, (set(), False), kinds, "network", torch
            )
        except ValueError as exc:
            if not guessed:
                raise
            raise ValueError(
                "Could not run the network on a guessed batch of zeros of shape "
                f"{tuple(x.shape)}; pass `inputs`."
            ) from exc
    names = _display_names(record.calls)
    keys = _auto_keys(record.calls, record.kinds, "network")
    if len(keys) == 1:
        _warn_no_hidden_layer(names[keys[0]], "network")
    return [names[key] for key in keys]


def relu_layers(network, inputs=None, *, layers="auto", include_input=True):
    """Which clouds of :class:`ActivationExtractor` are outputs of a ReLU.

    The paper's local homology (II-D) centers every layer that does not end
    with a ReLU (the input batch and the logits) and leaves the ReLU layers,
    whose points are non-negative, as they are. This gives the layer kinds in
    the order of the extractor's output for the same ``layers`` and
    ``include_input``, so that ``ActivationNormalizer(method="local",
    center=~relu_layers(network, batch))`` follows the paper's rule.

    Parameters
    ----------
    network : torch.nn.Module, fitted skorch NeuralNet, str or os.PathLike
        The network, or the path of a snapshot.
    inputs : array-like or torch.Tensor of shape (n_points, ...), default=None
        A batch to run forward (the layers are read from a forward pass); a few
        points suffice. ``None``: as in :func:`activation_layers`.
    layers : "auto" or list of str and int, default="auto"
        As in :class:`ActivationExtractor`.
    include_input : bool, default=True
        As in :class:`ActivationExtractor`: the input batch, layer 0, is not
        the output of a ReLU.

    Returns
    -------
    is_relu : ndarray of bool of shape (n_layers,)
        True where the cloud is the output of a ``torch.nn.ReLU`` or ``ReLU6``
        module, or of the ``relu`` or ``relu6`` function (``F.relu``,
        ``torch.relu``, ``x.relu()``, in place or not), or of a pooling
        module or function applied to one (its points are non-negative too).

    Examples
    --------
    >>> from torch import nn
    >>> from sklandscapes import relu_layers
    >>> net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 3), nn.Tanh(),
    ...                     nn.Linear(3, 2))
    >>> relu_layers(net)  # input, ReLU, Tanh, logits
    array([False,  True, False, False])

    A ReLU applied as a function counts too:

    >>> import torch
    >>> class Functional(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.hidden, self.out = nn.Linear(2, 3), nn.Linear(3, 2)
    ...     def forward(self, x):
    ...         return self.out(torch.relu(self.hidden(x)))
    >>> relu_layers(Functional())  # input, relu, logits
    array([False,  True, False])
    """
    torch = _import_torch()
    module = _load_network(network, "network")
    if not isinstance(layers, str):
        _check_layer_list(layers)
    kinds = _layer_kinds(module, torch)
    if inputs is None:
        inputs = _guess_inputs(module, torch)
    elif problem := _batch_problem(inputs):
        raise ValueError(f"`inputs` {problem}.")
    device = _module_device(module, torch)
    with _running(module, device, torch) as running:
        x = _as_network_input(inputs[:2], running, device, "network", torch)
        record = _record_forward(running, x, (set(), False), kinds, "network", torch)
    layers = layers if isinstance(layers, str) else list(layers)
    _, keys = _select_layers(record, layers, "network")
    flags = [_is_relu_call(key, record, module, torch) for key in keys]
    return np.asarray([False] * bool(include_input) + flags, dtype=bool)


def _is_relu_call(key, record, module, torch):
    """Whether the output of call ``key`` is that of a ReLU (non-negative)."""
    calls, kinds = record.calls, record.kinds

    def relu(name):
        if name in record.relus:
            return True
        if name in record.functions:
            return False
        sub = module.get_submodule(name)
        return isinstance(sub, (torch.nn.ReLU, torch.nn.ReLU6))

    if kinds[key[0]] != "pool":
        return relu(key[0])
    # A pooling (max or average) of ReLU outputs is non-negative too: it
    # follows the kind of the last affine or nonlinear call before it.
    before = [c for c in calls[: calls.index(key)] if kinds[c[0]] in _KINDS]
    return bool(before) and relu(before[-1][0])


_KINDS = ("affine", "nonlinear", "softmax")


def paper_centering(
    network, inputs=None, *, method="local", layers="auto", include_input=True
):
    """The ``center`` of :class:`ActivationNormalizer` by the paper's rule.

    Local homology (II-D) centers every layer that does not end with a ReLU
    (:func:`relu_layers`) and leaves the ReLU layers as they are; the global
    normalization centers every layer. The flags are read from the network
    itself, so that an input layer of non-negative values (pixels) is
    centered too, which a guess from the data would not do.

    Parameters
    ----------
    network : torch.nn.Module, fitted skorch NeuralNet, str or os.PathLike
        The network, or the path of a snapshot.
    inputs : array-like or torch.Tensor of shape (n_points, ...), default=None
        A batch to run forward, as in :func:`relu_layers`.
    method : {"local", "global"}, default="local"
        The normalization the flags are for.
    layers : "auto" or list of str and int, default="auto"
        As in :class:`ActivationExtractor`.
    include_input : bool, default=True
        As in :class:`ActivationExtractor`.

    Returns
    -------
    center : tuple of bool or "auto"
        One flag per cloud for ``method="local"``; ``"auto"`` otherwise.

    Examples
    --------
    >>> from torch import nn
    >>> from sklandscapes.activations import paper_centering
    >>> net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2))
    >>> paper_centering(net)  # input, ReLU, logits
    (True, False, True)
    >>> paper_centering(net, method="global")
    'auto'
    """
    if method != "local":
        return "auto"
    flags = ~relu_layers(network, inputs, layers=layers, include_input=include_input)
    return tuple(bool(flag) for flag in flags)


def _guess_inputs(module, torch):
    affine = [m for _, m in module.named_modules() if _is_affine(m, torch)]
    if not affine or not isinstance(affine[0], torch.nn.Linear):
        raise ValueError(
            "Pass `inputs`: the layer order is read from a forward pass, and an "
            "input batch can only be guessed when the first affine module is a "
            "Linear."
        )
    # Two points rather than one, so that a forward that squeezes still works.
    return torch.zeros(2, affine[0].in_features)


# --- networks ---------------------------------------------------------------


def _is_network(obj, torch):
    return (
        isinstance(obj, (torch.nn.Module, str, os.PathLike))
        or hasattr(obj, "module_")
        or hasattr(obj, "initialize")  # an unfitted skorch net: _load_network says so
    )


def _is_single_network(X, torch):
    """Whether X is one network where a sequence was expected."""
    if isinstance(X, torch.nn.ModuleList):  # a sequence of networks
        return False
    return _is_network(X, torch)


def _load_network(network, where):
    """The ``torch.nn.Module`` behind a module, a fitted skorch net or a path."""
    torch = _import_torch()
    if isinstance(network, torch.nn.Module):
        return network
    if isinstance(network, (str, os.PathLike)):
        path = os.fspath(network)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{where}: no snapshot file at {path!r}.")
        from sklandscapes._snapshot_files import load_snapshot

        try:
            return load_snapshot(path)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from exc
    module = getattr(network, "module_", None)
    if isinstance(module, torch.nn.Module):
        return module
    if hasattr(network, "initialize"):
        raise ValueError(
            f"{where}: the skorch net {type(network).__name__} has no module_; "
            "fit it first. (sklearn.base.clone returns unfitted copies of skorch "
            "nets: pass net.module_ to keep the weights.)"
        )
    raise ValueError(
        f"{where}: expected a torch.nn.Module, a fitted skorch NeuralNet or a "
        f"snapshot path, got {type(network).__name__}."
    )


def _is_affine(module, torch):
    nn = torch.nn
    return isinstance(module, (nn.Linear, nn.Bilinear, nn.Conv1d, nn.Conv2d, nn.Conv3d))


def _is_nonlinearity(module, torch):
    return isinstance(module, _nonlinearity_types(torch))


@functools.cache
def _nonlinearity_types(torch):
    activation = torch.nn.modules.activation
    # MultiheadAttention lives in that module too, but is no nonlinearity;
    # nor are the softmax family's modules (_softmax_types).
    return tuple(
        getattr(activation, name)
        for name in activation.__all__
        if name != "MultiheadAttention"
        and not issubclass(getattr(activation, name), _softmax_types(torch))
    )


def _softmax_types(torch):
    nn = torch.nn
    return (nn.Softmax, nn.Softmin, nn.LogSoftmax, nn.Softmax2d)


def _is_pooling(module, torch):
    return isinstance(module, _pooling_types(torch))


@functools.cache
def _pooling_types(torch):
    pooling = torch.nn.modules.pooling
    return tuple(
        getattr(pooling, name)
        for name in pooling.__all__
        if "Pool" in name and "Unpool" not in name
    )


def _layer_kinds(module, torch):
    """``{name: "affine" | "nonlinear" | "softmax" | "pool" | None}`` for every
    submodule but the root."""
    kinds = {}
    for name, sub in module.named_modules():
        if not name:
            continue
        if _is_affine(sub, torch):
            kinds[name] = "affine"
        elif _is_nonlinearity(sub, torch):
            kinds[name] = "nonlinear"
        elif isinstance(sub, _softmax_types(torch)):
            # Scores into probabilities, not a layer's activation: selectable
            # by name, never taken by "auto".
            kinds[name] = "softmax"
        elif _is_pooling(sub, torch):
            kinds[name] = "pool"
        else:
            kinds[name] = None
    return kinds


def _module_device(module, torch):
    tensor = next(module.parameters(), None)
    if tensor is None:
        tensor = next(module.buffers(), None)
    return torch.device("cpu") if tensor is None else tensor.device


def _module_dtype(module, torch):
    for parameter in module.parameters():
        if parameter.is_floating_point():
            return parameter.dtype
    return torch.get_default_dtype()


# --- devices ----------------------------------------------------------------


def _target_device(device, module, torch):
    return resolve_device(device, current=_module_device(module, torch))


@contextlib.contextmanager
def _running(module, device, torch):
    """Yield ``module`` on ``device`` in eval mode, ready for inference.

    A module on another device is copied rather than moved, so the caller's
    module keeps its device even when the forward pass fails. The training
    flag of every submodule is restored on exit (some users keep, say, a
    frozen batch norm in eval mode inside a module in train mode).
    """
    if _module_device(module, torch) != device:
        module = copy.deepcopy(module).to(device)
    modes = [(sub, sub.training) for sub in module.modules()]
    module.eval()
    try:
        with torch.inference_mode():
            yield module
    finally:
        for sub, training in modes:
            sub.training = training


# --- inputs -----------------------------------------------------------------


def _batch_problem(batch):
    """Why ``batch`` cannot be a batch of inputs (a phrase), or None."""
    try:
        shape = tuple(batch.shape) if hasattr(batch, "shape") else np.shape(batch)
    except ValueError as exc:
        return f"cannot be read as an array ({exc})"
    if len(shape) < 2:
        return f"must have shape (n_points, n_features, ...), got shape {shape}"
    if shape[0] == 0:
        return f"has no points (shape {shape})"
    if getattr(batch, "is_complex", lambda: False)() or (
        not hasattr(batch, "is_complex") and np.iscomplexobj(batch)
    ):
        return "has complex values; expected real numbers"
    return None


def _as_float64(batch, where, torch):
    """A private float64 copy of ``batch``, in its own shape."""
    if torch.is_tensor(batch):
        # Through .numpy(): np.array on a tensor warns under NumPy 2.
        batch = batch.detach().to(device="cpu", dtype=torch.float64).numpy()
    try:
        return np.array(batch, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{where}: the input batch cannot be read as a float array ({exc})."
        ) from exc


def _as_network_input(batch, module, device, where, torch):
    if torch.is_tensor(batch):
        source = batch.detach()
    else:
        source = torch.from_numpy(_as_float64(batch, where, torch))
    # copy=True: a first module that works in place must not write into the
    # caller's batch.
    return source.to(device=device, dtype=_module_dtype(module, torch), copy=True)


# --- forward pass -----------------------------------------------------------


def _record_forward(module, x, keep, kinds, where, torch):
    """Run ``module(x)`` once, recording the calls of modules and functions.

    Returns a :class:`~sklandscapes._forward.ForwardRecord`: the calls as
    ``(name, call_index)`` in the order they finished (forward order for
    leaf modules and functions), and a copy of the output of every call that
    ``keep`` (from :func:`_kept_names`) asks for.
    """
    record = ForwardRecord(
        kinds,
        *keep,
        opaque=_opaque_names(module, kinds, torch),
        leaves=_plain_leaves(module, kinds),
        batch=x,
        torch=torch,
    )
    check_features = _feature_check(x, where, torch)
    handles = []
    try:
        for name, sub in module.named_modules():
            if not name:
                continue
            handles.append(sub.register_forward_pre_hook(_starting(record, name)))
            handles.append(sub.register_forward_hook(_finishing(record, name)))
            if kinds[name] == "affine":
                handles.append(sub.register_forward_pre_hook(check_features(name)))
        _run_forward(module, x, record, where, torch)
    finally:
        for handle in handles:
            handle.remove()
    return record


def _starting(record, name):
    def pre_hook(sub, args):
        record.module_started(name)

    return pre_hook


def _finishing(record, name):
    def hook(sub, args, output):
        record.module_finished(name, output)

    return hook


def _run_forward(module, x, record, where, torch):
    try:
        with transformer_fastpath_disabled(torch), record.watching_functions():
            module(x)
    except _ForwardError:
        raise
    # AssertionError: torch's own shape checks (attention, say) assert.
    except (
        RuntimeError,
        TypeError,
        ValueError,
        IndexError,
        KeyError,
        AssertionError,
    ) as exc:
        raise ValueError(
            f"{where}: the forward pass failed on inputs of shape "
            f"{tuple(x.shape)}: {exc}"
        ) from exc


def _feature_check(x, where, torch):
    """A factory of pre-hooks that check the inputs' width, for one pass."""
    first_affine_seen = False

    def check_features(name):
        # Only the first affine call sees the inputs, so only it can tell the
        # user that the inputs, not the network, have the wrong width.
        def pre_hook(sub, args):
            nonlocal first_affine_seen
            if first_affine_seen:
                return
            first_affine_seen = True
            if not (isinstance(sub, torch.nn.Linear) and args):
                return
            received = args[0].shape[-1] if torch.is_tensor(args[0]) else None
            if received is not None and received != sub.in_features:
                raise _ForwardError(
                    f"{where}: the inputs have {received} features but the "
                    f"network's first affine layer {name!r} (Linear) expects "
                    f"in_features={sub.in_features} (inputs of shape "
                    f"{tuple(x.shape)})."
                )

        return pre_hook

    return check_features


def _plain_leaves(module, kinds):
    """The modules without submodules that are not affine, nonlinear or pooling.

    Those whose ``forward`` calls activation functions are activation modules
    of the user's own (a QuickGELU, ``x * torch.sigmoid(1.702 * x)``): their
    output is the layer, not one of the functions inside.
    """
    return frozenset(
        name
        for name, sub in module.named_modules()
        if name and kinds[name] is None and next(sub.children(), None) is None
    )


def _opaque_names(module, kinds, torch):
    """The modules whose function calls are their own implementation.

    ``nn.ReLU`` computes its output with ``F.relu``, pooling modules with
    pooling functions, attention with a softmax: those calls are the module's
    output (already a call of its own) or inside it, not layers.
    """
    attention = torch.nn.MultiheadAttention
    return frozenset(
        name
        for name, sub in module.named_modules()
        if name and (kinds[name] is not None or isinstance(sub, attention))
    )


def _display_names(calls):
    """``{(name, k): label}``; ``name:k`` only for modules that ran several times."""
    counts = Counter(name for name, _ in calls)
    return {
        (name, k): name if counts[name] == 1 else f"{name}:{k}" for name, k in calls
    }


def _auto_keys(calls, kinds, where):
    """The calls whose outputs are the paper's x^(1), ..., x^(D)."""
    picked = []  # (nonlinearity or pooling call, the affine call it follows)
    pending = last_affine = after = None
    for key in calls:
        kind = kinds[key[0]]
        if kind == "affine":
            # An affine call straight after another one replaces it: the
            # composite of two affine maps is one affine layer.
            pending = last_affine = key
            after = None
        elif kind == "nonlinear" and pending is not None:
            picked.append((key, pending))
            after, pending = pending, None
        elif kind == "pool" and after is not None:
            # A pooling of a layer's feature maps is a layer of its own (a
            # convolutional block's downsampled output); one per block.
            picked.append((key, after))
            after = None
    if last_affine is None:
        raise ValueError(
            f"{where}: no affine layer (a Linear, Conv1d/2d/3d or Bilinear module) "
            "ran in the forward pass (F.linear and F.conv2d called with weights of "
            "their own are not seen), so layers='auto' has nothing to take; pass "
            "`layers` as a list of module or function names."
        )
    # The last layer is the logits, as in the paper (sigma_D is omitted): a
    # softmax or other nonlinearity after the last affine layer is left out.
    return [key for key, affine in picked if affine != last_affine] + [last_affine]


def _check_layer_list(layers):
    layers = list(layers)
    bad = [
        f"item {i} is {item!r}"
        for i, item in enumerate(layers)
        if not isinstance(item, str)
        and (isinstance(item, bool) or not isinstance(item, Integral))
    ]
    if bad:
        raise ValueError(
            "`layers` must be 'auto' or a list of module names (str) and/or "
            f"indices into the 'auto' layers (int); {', '.join(bad)}."
        )
    if not layers:
        raise ValueError(
            "`layers` is empty; name at least one layer or use layers='auto'."
        )


def _kept_names(layers, kinds):
    """What a forward pass must copy to serve ``layers``.

    Returns the names of the modules and function call sites to keep, and
    whether to keep every function call (for "auto" and its indices).
    """
    items = [] if isinstance(layers, str) else layers
    labels = [item for item in items if isinstance(item, str)]
    # "act:1" is a call of module "act", "relu:1" of the call site "relu".
    names = set(labels) | {label.rpartition(":")[0] for label in labels if ":" in label}
    every = isinstance(layers, str) or len(labels) < len(items)
    if every:
        # Any affine, nonlinear or pooling call may be picked.
        names |= {name for name, kind in kinds.items() if kind not in (None, "softmax")}
    return names, every


def _select_layers(record, layers, where):
    """The names and call keys of the requested layers, in the requested order."""
    calls, kinds = record.calls, record.kinds
    names = _display_names(calls)
    if isinstance(layers, str):
        keys = _auto_keys(calls, kinds, where)
        return [names[key] for key in keys], keys
    by_label = {label: key for key, label in names.items()}
    auto = None
    keys = []
    for item in layers:
        if isinstance(item, str):
            keys.append(_lookup_name(item, by_label, record, where))
            continue
        if auto is None:
            auto = _auto_keys(calls, kinds, where)
        if not -len(auto) <= item < len(auto):
            raise ValueError(
                f"{where}: layer index {item} in `layers` is out of range: "
                f"layers='auto' has {len(auto)} layers "
                f"{[names[key] for key in auto]}, so indices run from "
                f"{-len(auto)} to {len(auto) - 1}."
            )
        keys.append(auto[item])
    return [names[key] for key in keys], keys


def _lookup_name(label, by_label, record, where):
    if label in by_label:
        return by_label[label]
    ran = Counter(name for name, _ in record.calls)
    if ran[label] > 1:
        options = [f"{label}:{k}" for k in range(ran[label])]
        what = "function call" if label in record.functions else "module"
        raise ValueError(
            f"{where}: {what} {label!r} runs {ran[label]} times in the forward "
            f"pass; name one call in `layers`: {options}."
        )
    if label in record.kinds:
        raise ValueError(
            f"{where}: module {label!r} (from `layers`) did not run in the forward "
            "pass, so it has no activations."
        )
    valid = list(by_label)
    close = difflib.get_close_matches(label, valid, n=1)
    hint = f"Did you mean {close[0]!r}? " if close else ""
    raise ValueError(
        f"{where}: unknown layer {label!r} in `layers`. {hint}Valid names (the "
        "modules, and the activation and pooling functions, that ran, in "
        f"forward order): {valid}."
    )


def _as_rows(output, n_points, name, token_axis, where, torch):
    """One layer's output as a tensor of rows (one per point), as it is."""
    if not torch.is_tensor(output):
        raise ValueError(
            f"{where}: layer {name!r} returned a {output}, not a tensor, so it has "
            "no activations to take; pick another module in `layers`."
        )
    if output.ndim == 0 or output.shape[0] != n_points:
        raise ValueError(
            f"{where}: layer {name!r} returned shape {tuple(output.shape)}; every "
            f"layer must keep one row per input point ({n_points} points) on its "
            "first axis."
        )
    return _point_rows(output, token_axis, f"{where}: layer {name!r}")


def _point_rows(values, token_axis, what):
    """``values`` of shape (n, ...) as a 2-D array or tensor of points.

    One row per input (every other axis flattened), or with ``token_axis``
    one row per (input, token), input-major, of the axes left.
    """
    n_points, shape = values.shape[0], tuple(values.shape)
    axes = _token_axes(token_axis, shape, what)
    if not axes:
        return values.reshape(n_points, -1)
    features = [axis for axis in range(1, len(shape)) if axis not in axes]
    order = (0, *axes, *features)
    moved = (
        values.permute(order) if hasattr(values, "permute") else values.transpose(order)
    )
    n_tokens = int(np.prod([shape[axis] for axis in axes]))
    width = int(np.prod([shape[axis] for axis in features]))
    return moved.reshape(n_points * n_tokens, width)


def _token_axes(token_axis, shape, what):
    """The token axes of an output of ``shape``, as non-negative ints, or ()."""
    if token_axis is None:
        return ()
    requested = token_axis if isinstance(token_axis, tuple) else (token_axis,)
    ndim = len(shape)
    if ndim < len(requested) + 2:
        # No token axis besides the points' and the features' (the logits of a
        # classifier, say): one point per input.
        return ()
    axes = tuple(axis + ndim if axis < 0 else axis for axis in requested)
    if any(not 1 <= axis < ndim for axis in axes) or len(set(axes)) < len(axes):
        raise ValueError(
            f"{what} has shape {shape}: token_axis={token_axis!r} must name "
            "distinct axes of it other than the first (the points'). It applies "
            "to every layer with at least 2 dimensions more than token axes; "
            "negative axes count from the last, as the features'."
        )
    return axes


def _check_token_axis(token_axis):
    if token_axis is None:
        return
    axes = token_axis if isinstance(token_axis, tuple) else (token_axis,)
    if (
        not axes
        or any(isinstance(a, bool) or not isinstance(a, Integral) for a in axes)
        or 0 in axes
        or len(set(axes)) < len(axes)
    ):
        raise ValueError(
            "`token_axis` must be None, a non-zero int or a tuple of distinct "
            f"non-zero ints (axis 0 indexes the input points); got {token_axis!r}."
        )


def _extract(
    module,
    batch,
    *,
    layers,
    include_input,
    device,
    batch_size,
    output,
    block_size,
    token_axis,
    where,
    torch,
):
    """The names and clouds (or LayerDistances) of one network on one batch."""
    kinds = _layer_kinds(module, torch)
    keep = _kept_names(layers, kinds)
    target = _target_device(device, module, torch)
    with _running(module, target, torch) as running:
        x = _as_network_input(batch, running, target, where, torch)
        names, pieces = _layer_rows(
            running,
            x,
            keep=keep,
            kinds=kinds,
            layers=layers,
            batch_size=batch_size,
            output=output,
            token_axis=token_axis,
            where=where,
            torch=torch,
        )
        # The network's input is no longer needed: free it before the
        # distances are computed.
        del x
        if output == "clouds":
            clouds = pieces
        else:
            clouds = []
            for layer in range(len(names)):
                clouds.append(_layer_distances(pieces[layer], block_size, torch))
                # Free each layer's activations once its distances exist.
                pieces[layer] = None
    if include_input:
        names = [_INPUT_NAME, *names]
        what = f"{where}: the input batch"
        if output == "clouds":
            values = _as_float64(batch, where, torch)
            clouds = [_point_rows(values, token_axis, what), *clouds]
        else:
            rows = _as_exact_tensor(batch, where, torch).to(target)
            rows = _point_rows(rows, token_axis, what)
            clouds = [_layer_distances(rows, block_size, torch), *clouds]
    return names, clouds


def _layer_rows(
    running, x, *, keep, kinds, layers, batch_size, output, token_axis, where, torch
):
    """The names and rows of the selected layers, the batch run in chunks.

    The rows are float64 arrays for ``output="clouds"``, else tensors in the
    network's dtype on its device.
    """
    step = len(x) if batch_size is None else batch_size
    names, pieces, filled = None, [], []
    for start in range(0, len(x), step):
        chunk = x[start : start + step]
        record = _record_forward(running, chunk, keep, kinds, where, torch)
        chunk_names, keys = _select_layers(record, layers, where)
        if names is None:
            names = chunk_names
        elif chunk_names != names:
            raise ValueError(
                f"{where}: the forward pass runs different layers on different "
                f"chunks ({names} vs {chunk_names}), so `batch_size` changes "
                "the result; use batch_size=None."
            )
        rows = [
            _as_rows(record.outputs[key], len(chunk), name, token_axis, where, torch)
            for key, name in zip(keys, chunk_names)
        ]
        # The outputs of layers not taken are no longer needed.
        del record
        if output == "clouds":
            pieces.append([_as_float64_rows(layer, torch) for layer in rows])
            continue
        # Each layer's activations go straight into one tensor of all the
        # points (times tokens), in their own dtype on the device: no second
        # copy.
        if not pieces:
            pieces = [
                torch.empty(
                    (len(x) * (len(layer) // len(chunk)), layer.shape[1]),
                    dtype=layer.dtype,
                    device=layer.device,
                )
                for layer in rows
            ]
            filled = [0] * len(rows)
        for i, layer in enumerate(rows):
            pieces[i][filled[i] : filled[i] + len(layer)] = layer
            filled[i] += len(layer)
        del rows
    if output == "clouds":
        return names, [np.concatenate(layer_pieces) for layer_pieces in zip(*pieces)]
    return names, pieces


def _as_float64_rows(rows, torch):
    return rows.to(device="cpu", dtype=torch.float64).numpy()


def _as_exact_tensor(batch, where, torch):
    """``batch`` as a tensor with the same values, in its own float dtype."""
    if torch.is_tensor(batch):
        batch = batch.detach()
        return batch if batch.is_floating_point() else batch.to(torch.float64)
    if isinstance(batch, np.ndarray) and batch.dtype in (np.float32, np.float64):
        return torch.from_numpy(np.ascontiguousarray(batch))
    return torch.from_numpy(_as_float64(batch, where, torch))


def _layer_distances(rows, block_size, torch):
    """The LayerDistances of one layer's rows, or None when a value is not finite.

    The rows stay on their device in their dtype; blocks of them are
    converted to float64 there (see the Notes of ActivationExtractor for the
    precision). Only the n_points x n_points result lives in host memory.
    """
    n_points, width = rows.shape
    step = block_size or max(1, _BLOCK_VALUES // max(width, 1))
    float64 = torch.float64
    blocks = range(0, n_points, step)
    # First pass: finiteness, sign and scale, one block at a time.
    largest = 0.0
    nonnegative = True
    for start in blocks:
        block = rows[start : start + step]
        if not bool(torch.isfinite(block).all()):
            return None
        nonnegative &= bool((block >= 0).all())
        largest = max(largest, float(block.abs().max()))
    # Rescaling by a power of two is exact and keeps squares (and sums) of
    # activations of 1e200 (float64 networks) from overflowing; lengths are
    # scaled back at the end.
    exponent = int(np.frexp(largest)[1]) if largest > 0 else 0
    power = torch.tensor(-exponent, device=rows.device)

    def scaled(start):
        # A copy even of float64 rows, which are then scaled in place.
        block = rows[start : start + step].to(float64, copy=True)
        return torch.ldexp(block, power, out=block)

    def scaled_rows(indices):
        # Indexing with a tensor copies.
        block = rows[indices].to(float64)
        return torch.ldexp(block, power, out=block)

    mean = sum(scaled(start).sum(dim=0) for start in blocks) / n_points

    norms = np.empty(n_points)
    centered_norms = np.empty(n_points)
    distances = np.empty((n_points, n_points))
    for start in blocks:
        stop = min(start + step, n_points)
        block = scaled(start)
        norms[start:stop] = torch.linalg.vector_norm(block, dim=1).cpu().numpy()
        block -= mean
        block_norms = torch.linalg.vector_norm(block, dim=1)
        centered_norms[start:stop] = block_norms.cpu().numpy()
        squares = block_norms**2
        for other_start in range(start, n_points, step):
            other_stop = min(other_start + step, n_points)
            if other_start == start:
                other, other_squares = block, squares
            else:
                other = scaled(other_start).sub_(mean)
                other_squares = torch.linalg.vector_norm(other, dim=1) ** 2
            scale = squares[:, None] + other_squares[None, :]
            squared = scale - 2 * (block @ other.T)
            bound = (2 * width + 10) * _UNIT_ROUNDOFF * scale
            close = squared * _GRAM_RTOL < bound
            if other_start == start:
                close = torch.triu(close, diagonal=1)
            pairs = torch.nonzero(close)
            for first in range(0, len(pairs), step):
                i, j = pairs[first : first + step].T
                difference = scaled_rows(start + i) - scaled_rows(other_start + j)
                squared[i, j] = (difference * difference).sum(dim=1)
            values = squared.clamp_(min=0).sqrt_().cpu().numpy()
            if other_start == start:
                # Symmetric only up to rounding: keep the upper triangle, so
                # that the matrix is exactly symmetric with a zero diagonal.
                values = np.triu(values, 1)
                values += values.T
            distances[start:stop, other_start:other_stop] = values
            distances[other_start:other_stop, start:stop] = values.T
    return LayerDistances(
        np.ldexp(distances, exponent),
        np.ldexp(norms, exponent),
        np.ldexp(centered_norms, exponent),
        nonnegative,
    )


# --- checks of the result ---------------------------------------------------


def _warn_no_hidden_layer(logits, where):
    functions = ", ".join(ACTIVATION_FUNCTIONS)
    _warn_at_caller(
        f"{where}: layers='auto' found no hidden layer, only the output of the "
        f"last affine layer ({logits!r}). It takes the outputs of the torch.nn "
        "activation and pooling modules, and of the functions "
        f"{functions} and the pooling functions (max_pool2d, avg_pool2d, "
        "adaptive_avg_pool2d, ...; called as F.relu, torch.relu or x.relu()), "
        "that follow an affine module (Linear, Conv1d/2d/3d, Bilinear); not "
        "those of the softmax family (softmax, softmin, log_softmax and their "
        "modules), which make probabilities. If the network computes its "
        "nonlinearity another way (torch.clamp, say), name its layers in "
        "`layers`; if it is affine on purpose, filter NoHiddenLayerWarning.",
        NoHiddenLayerWarning,
    )


def _warn_at_caller(message, category):
    """Warn at the first frame outside sklandscapes and scikit-learn.

    ``transform`` is reached through scikit-learn's wrappers and
    ``fit_transform``: a fixed stacklevel would point inside them.
    """
    import sklearn

    inside = tuple(
        os.path.dirname(package.__file__) + os.sep
        for package in (sys.modules["sklandscapes"], sklearn)
    )
    frame, stacklevel = sys._getframe(1), 2
    while frame is not None and frame.f_code.co_filename.startswith(inside):
        frame, stacklevel = frame.f_back, stacklevel + 1
    warnings.warn(message, category, stacklevel=stacklevel)


def _check_layer_counts(names):
    errors = [
        f"sample {i} has {len(layer_names)} layers {layer_names}, sample 0 has "
        f"{len(names[0])} {names[0]}"
        for i, layer_names in enumerate(names)
        if len(layer_names) != len(names[0])
    ]
    _raise_if_errors(
        errors,
        "layers: every sample needs the same number",
        "Networks with different depths cannot share one output; pass `layers` "
        "as a list of names or indices that every network has.",
    )


def _check_finite(names, rows):
    errors = []
    for i, (layer_names, clouds) in enumerate(zip(names, rows)):
        for layer, (name, cloud) in enumerate(zip(layer_names, clouds)):
            # Only the first bad layer per sample: later ones follow from it.
            # The distances path gives None for activations that are not finite.
            if cloud is None or (
                not isinstance(cloud, LayerDistances) and not np.isfinite(cloud).all()
            ):
                errors.append(f"sample {i}, layer {layer} ({name!r}): NaN or inf")
                break
    _raise_if_errors(
        errors,
        "activations (not finite)",
        "A network whose training diverged gives NaN or inf activations; drop it "
        "from X. In layer 'input', the input batch itself is not finite.",
    )
