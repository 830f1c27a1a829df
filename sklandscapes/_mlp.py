"""The multi-layer perceptron of the paper (section II-D) as a torch module."""

import numbers
import operator

import torch
from torch import nn

__all__ = ["MLP"]

ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
}


def check_widths(widths):
    """Return ``widths`` as a tuple of ints, or raise a ValueError that says why."""
    try:
        widths = tuple(widths)
    except TypeError:
        raise ValueError(
            f"widths must be a sequence of positive ints such as (2, 15, 2), "
            f"got {widths!r}."
        ) from None
    if len(widths) < 2:
        raise ValueError(
            "widths must have at least 2 entries (input and output width), "
            f"got {widths!r}."
        )
    bad = [
        w
        for w in widths
        if isinstance(w, bool) or not isinstance(w, numbers.Integral) or w < 1
    ]
    if bad:
        raise ValueError(
            f"widths must contain positive ints only, got {widths!r} "
            f"(bad entries: {bad!r})."
        )
    return tuple(operator.index(w) for w in widths)


def resolve_activation(activation):
    """Return the ``nn.Module`` class that ``activation`` names."""
    if isinstance(activation, str) and activation in ACTIVATIONS:
        return ACTIVATIONS[activation]
    if isinstance(activation, type) and issubclass(activation, nn.Module):
        return activation
    raise ValueError(
        f"activation must be one of {sorted(ACTIVATIONS)} or a torch.nn.Module "
        f"subclass, got {activation!r}."
    )


def init_linear_(weight, bias, generator):
    """Draw ``weight`` and ``bias`` like ``nn.Linear.reset_parameters``.

    ``nn.Linear`` uses ``kaiming_uniform_(a=sqrt(5))``, which is the uniform
    distribution on ``[-1/sqrt(fan_in), 1/sqrt(fan_in)]``, and the same bound for
    the bias; drawing both from a local generator gives that distribution without
    touching torch's global seed. ``weight`` may carry leading batch axes
    (stacked networks); ``fan_in`` is its last axis.
    """
    bound = 1.0 / weight.shape[-1] ** 0.5
    with torch.no_grad():
        weight.uniform_(-bound, bound, generator=generator)
        bias.uniform_(-bound, bound, generator=generator)


class MLP(nn.Module):
    """Multi-layer perceptron: affine map and activation per layer, logits out.

    Layer ``l`` (``1 <= l < len(widths) - 1``) is ``nn.Linear(widths[l-1],
    widths[l])`` followed by the activation; the last layer is affine only, so
    the module outputs logits (use ``torch.nn.CrossEntropyLoss``). This is the
    network of the paper's section II-D; ``widths=(2,) + (15,) * 10 + (2,)`` is
    its synthetic-data network.

    Parameters
    ----------
    widths : sequence of int
        Widths of the input, of every hidden layer and of the output, so at
        least 2 entries, all positive.
    activation : {"relu", "tanh", "sigmoid", "leaky_relu", "gelu"} or \
            nn.Module subclass, default="relu"
        Non-linearity after every layer but the last. A class is instantiated
        with no arguments, once per layer.
    random_state : int or None, default=None
        Seed of a local ``torch.Generator`` for the initial weights, drawn from
        the same distribution as ``nn.Linear``'s default. ``None`` initializes
        like any torch module, from torch's global random state.

    Attributes
    ----------
    layers : nn.Sequential
        ``Linear, activation, Linear, activation, ..., Linear``. Forward hooks on
        these submodules see every layer.
    layer_modules : list of nn.Module
        The submodule whose output is the activation of layer ``l`` (the paper's
        ``x^(l)``) for ``l = 1, ..., depth``: the activation module of each
        hidden layer and the last ``Linear``.
    depth : int
        Number of affine layers, ``len(widths) - 1``.

    See Also
    --------
    make_mlp_classifier : A skorch classifier over this module.
    train_networks : Train many of these networks at once.

    Examples
    --------
    >>> import torch
    >>> from sklandscapes.nets import MLP
    >>> net = MLP((2, 15, 15, 2), random_state=0)
    >>> net
    MLP(
      (layers): Sequential(
        (0): Linear(in_features=2, out_features=15, bias=True)
        (1): ReLU()
        (2): Linear(in_features=15, out_features=15, bias=True)
        (3): ReLU()
        (4): Linear(in_features=15, out_features=2, bias=True)
      )
    )
    >>> net(torch.zeros(5, 2)).shape
    torch.Size([5, 2])
    >>> net.depth
    3
    """

    def __init__(self, widths, activation="relu", random_state=None):
        super().__init__()
        self.widths = check_widths(widths)
        self.activation = activation
        activation_class = resolve_activation(activation)
        generator = None
        if random_state is not None:
            generator = torch.Generator().manual_seed(operator.index(random_state))
        modules = []
        for index, (n_in, n_out) in enumerate(zip(self.widths, self.widths[1:])):
            modules.append(_linear(n_in, n_out, generator))
            if index < len(self.widths) - 2:
                modules.append(activation_class())
        self.layers = nn.Sequential(*modules)

    @property
    def depth(self):
        return len(self.widths) - 1

    @property
    def layer_modules(self):
        return [*self.layers[1::2], self.layers[-1]]

    def forward(self, X):
        return self.layers(X)


def _linear(n_in, n_out, generator):
    if generator is None:
        return nn.Linear(n_in, n_out)
    # Built on the meta device first, so that construction draws nothing from
    # torch's global random state; the local generator then fills it.
    linear = nn.Linear(n_in, n_out, device="meta").to_empty(device="cpu")
    init_linear_(linear.weight, linear.bias, generator)
    return linear


def mlp_from_state_dict(widths, activation, state_dict):
    """Build an ``MLP`` holding ``state_dict`` without drawing random numbers."""
    with torch.device("meta"):
        module = MLP(widths, activation)
    module.load_state_dict(state_dict, assign=True)
    return module.eval()
