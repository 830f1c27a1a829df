"""What a forward pass computes, whether modules or functions compute it.

Forward hooks see only the outputs of modules, but most PyTorch code applies
its nonlinearities as functions (``F.relu(self.fc1(x))``, ``x.relu()``, the
``activation`` of ``nn.TransformerEncoderLayer``). A
:class:`torch.overrides.TorchFunctionMode` (public API) sees those calls at
the Python level, whichever spelling calls them, and the module hooks say in
which module's ``forward`` each one happens. Torch is passed in by the caller,
which imports it lazily.
"""

import contextlib
import functools
import threading
from collections import Counter

# The functions of the torch.nn activation modules (the module names in
# lower case), which ActivationExtractor takes as nonlinearities.
ACTIVATION_FUNCTIONS = (
    "relu",
    "relu6",
    "leaky_relu",
    "rrelu",
    "prelu",
    "elu",
    "selu",
    "celu",
    "gelu",
    "silu",
    "mish",
    "hardswish",
    "hardsigmoid",
    "hardtanh",
    "threshold",
    "sigmoid",
    "logsigmoid",
    "tanh",
    "tanhshrink",
    "softplus",
    "softsign",
    "softshrink",
    "hardshrink",
    "glu",
    "softmax",
    "softmin",
    "log_softmax",
)

# The functions of the torch.nn pooling modules.
POOLING_FUNCTIONS = tuple(
    f"{kind}{dimensions}d"
    for kind in (
        "max_pool",
        "avg_pool",
        "adaptive_max_pool",
        "adaptive_avg_pool",
        "lp_pool",
        "fractional_max_pool",
    )
    for dimensions in (1, 2, 3)
)

# The ReLU functions, whose outputs are non-negative (relu_layers).
RELU_FUNCTIONS = ("relu", "relu6")


@functools.cache
def function_table(torch):
    """``{function: (op, kind)}`` for every spelling of the functions above.

    ``F.relu``, ``torch.relu``, ``Tensor.relu`` and the in-place ``relu_``
    (``F.relu(x, inplace=True)`` reaches the mode as ``F.relu``) are all
    ``("relu", "nonlinear")``; ``max_pool2d_with_indices`` is ``max_pool2d``.
    """
    spaces = (torch.nn.functional, torch, torch.Tensor)
    table = {}
    for kind, ops in (("nonlinear", ACTIVATION_FUNCTIONS), ("pool", POOLING_FUNCTIONS)):
        for op in ops:
            for spelling in (op, f"{op}_", f"{op}_with_indices"):
                for space in spaces:
                    function = getattr(space, spelling, None)
                    if callable(function):
                        table.setdefault(function, (op, kind))
    return table


class ForwardRecord:
    """The calls of one forward pass, module and function calls alike.

    ``calls`` lists ``(name, k)`` for the ``k``-th call of ``name``, in the
    order the calls finished; ``outputs`` holds a copy of the output of every
    call of the names in ``keep`` (and of every function call when
    ``every_function``); ``kinds`` extends the modules' kinds with the
    functions that ran (``"nonlinear"`` or ``"pool"``); ``functions`` maps a
    function call's name to its op, and ``relus`` holds the names whose
    output is that of a ReLU function.

    A function call is named by the module whose ``forward`` makes it, then
    the op: ``F.relu`` in the ``forward`` of ``layers.0`` is
    ``"layers.0.relu"``, in the root module's ``forward`` it is ``"relu"``. A
    name that a submodule already has gets ``"()"`` appended. A module
    without submodules (one of ``leaves``) whose ``forward`` calls such
    functions is an activation module of the user's own (``x *
    torch.sigmoid(1.702 * x)``): its output, not the functions' inside it,
    is the layer, under its own name.
    """

    def __init__(self, kinds, keep, every_function, *, opaque, leaves, n_points, torch):
        self.calls = []
        self.outputs = {}
        self.kinds = dict(kinds)
        self.functions = {}
        self.relus = set()
        self._modules = frozenset(kinds)
        self._keep = keep
        self._every_function = every_function
        self._opaque = opaque
        self._leaves = leaves
        self._n_points = n_points
        self._torch = torch
        self._counts = Counter()
        self._running = []  # the modules whose forward is running, outermost first
        self._last_function = {}  # leaf module -> (op, output) of its last call

    def module_started(self, name):
        self._running.append(name)
        self._last_function.pop(name, None)

    def module_finished(self, name, output):
        if self._running and self._running[-1] == name:
            self._running.pop()
        last = self._last_function.pop(name, None)
        if last is None:
            self._record(name, output, name in self._keep)
            return
        self.kinds[name] = "nonlinear"
        op, result = last
        if op in RELU_FUNCTIONS and output is result:
            self.relus.add(name)
        self._record(name, output, name in self._keep or self._every_function)

    def function_returned(self, op, kind, output):
        # Inside an activation, pooling, affine or attention module the
        # functions are how the module computes its own output: not layers.
        if any(name in self._opaque for name in self._running):
            return
        if isinstance(output, tuple):  # max_pool2d(..., return_indices=True)
            output = output[0]
        # Only activations of the batch (one row per point), not a function
        # of the weights alone, such as a sigmoid gate on a parameter.
        torch = self._torch
        if not torch.is_tensor(output) or output.ndim == 0:
            return
        if output.shape[0] != self._n_points:
            return
        where = self._running[-1] if self._running else ""
        if where in self._leaves:
            self._last_function[where] = (op, output)
            return
        name = f"{where}.{op}" if where else op
        if name in self._modules:
            name += "()"
        self.kinds[name] = kind
        self.functions[name] = op
        if op in RELU_FUNCTIONS:
            self.relus.add(name)
        self._record(name, output, name in self._keep or self._every_function)

    def _record(self, name, output, keep):
        key = (name, self._counts[name])
        self._counts[name] += 1
        self.calls.append(key)
        if keep:
            # A copy: a later in-place operation (ReLU(inplace=True)) would
            # otherwise overwrite this output.
            self.outputs[key] = (
                output.detach().clone()
                if self._torch.is_tensor(output)
                else type(output).__name__
            )

    @contextlib.contextmanager
    def watching_functions(self):
        """Record the calls of the functions of :func:`function_table`."""
        torch = self._torch
        with _recorder_class(torch)(self, function_table(torch)):
            yield


@functools.cache
def _recorder_class(torch):
    class FunctionRecorder(torch.overrides.TorchFunctionMode):
        def __init__(self, record, table):
            super().__init__()
            self.record = record
            self.table = table

        def __torch_function__(self, func, types, args=(), kwargs=None):
            output = func(*args, **(kwargs or {}))
            try:
                found = self.table.get(func)
            except TypeError:  # an unhashable callable is none of ours
                found = None
            if found is not None:
                self.record.function_returned(*found, output)
            return output

    return FunctionRecorder


_fastpath_lock = threading.Lock()
_fastpath_users = 0
_fastpath_saved = None


@contextlib.contextmanager
def transformer_fastpath_disabled(torch):
    """Run transformer blocks op by op, as their Python code says.

    In eval mode PyTorch runs each ``nn.TransformerEncoderLayer`` as one fused
    operation, inside which no activation can be seen. (Torch 2.13 also
    leaves the fast path while any torch function mode is active, ours
    included; the switch does not rely on that check.) The switch is global,
    so extractions running in several threads share one count, and the
    caller's setting comes back when the last of them ends, also on an error.
    """
    global _fastpath_users, _fastpath_saved
    mha = getattr(torch.backends, "mha", None)
    if mha is None or not hasattr(mha, "set_fastpath_enabled"):
        yield  # a torch without the switch
        return
    with _fastpath_lock:
        if _fastpath_users == 0:
            _fastpath_saved = mha.get_fastpath_enabled()
            mha.set_fastpath_enabled(False)
        _fastpath_users += 1
    try:
        yield
    finally:
        with _fastpath_lock:
            _fastpath_users -= 1
            if _fastpath_users == 0:
                mha.set_fastpath_enabled(_fastpath_saved)
