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
import weakref
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
)

# The softmax family: they turn scores into probabilities (the last step of
# a classifier, an attention's weights), they are not a layer's activation.
# Recorded under kind "softmax", which layers="auto" never takes; they can be
# named in `layers`.
SOFTMAX_FUNCTIONS = ("softmax", "softmin", "log_softmax")

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
    for kind, ops in (
        ("nonlinear", ACTIVATION_FUNCTIONS),
        ("softmax", SOFTMAX_FUNCTIONS),
        ("pool", POOLING_FUNCTIONS),
    ):
        for op in ops:
            for spelling in (op, f"{op}_", f"{op}_with_indices"):
                for space in spaces:
                    function = getattr(space, spelling, None)
                    if callable(function):
                        table.setdefault(function, (op, kind))
    return table


# Functions whose values do not come from their tensor arguments, only
# their shape, dtype or device (torch.zeros_like(x) is zeros).
SHAPE_ONLY_FUNCTIONS = frozenset(
    [f"{fill}_like" for fill in ("zeros", "ones", "empty", "full", "rand", "randn")]
    + ["randint_like", "new_zeros", "new_ones", "new_empty", "new_full"]
)
# Functions whose values come from their first argument alone, the others
# giving a dtype, device or shape: gate.to(x), gate.expand_as(x) are
# functions of the gate.
FIRST_ARGUMENT_FUNCTIONS = frozenset(
    ("to", "type", "type_as", "expand_as", "view_as", "reshape_as")
)


class ForwardRecord:
    """The calls of one forward pass, module and function calls alike.

    ``calls`` lists ``(name, k)`` for the ``k``-th call of ``name``, in the
    order the calls finished; ``outputs`` holds a copy of the output of every
    call of the names in ``keep`` (and of every function call but the
    softmax family's when ``every_function``); ``kinds`` extends the
    modules' kinds with the functions that ran (``"nonlinear"``,
    ``"softmax"`` or ``"pool"``); ``functions`` maps a function call's name
    to its op, and ``relus`` holds the names whose output is that of a ReLU
    function.

    A function call is named by the module whose ``forward`` makes it, then
    the op: ``F.relu`` in the ``forward`` of ``layers.0`` is
    ``"layers.0.relu"``, in the root module's ``forward`` it is ``"relu"``. A
    name that a submodule already has gets ``"()"`` appended. A module
    without submodules (one of ``leaves``) whose ``forward`` calls such
    functions is an activation module of the user's own (``x *
    torch.sigmoid(1.702 * x)``): its output, not the functions' inside it,
    is the layer, under its own name (of kind ``"softmax"`` if it calls
    only the softmax family).

    Only the activations of the batch are recorded: a function call whose
    arguments include a tensor computed from the batch, and whose output
    has one row per point. A tensor is computed from the batch if it is the
    batch, the output of any torch function (``torch.nn`` modules compute
    theirs with such functions) with such an argument, or a tensor that
    such a call wrote into in place (``h[:, :3] = x``, ``h.add_(x)``). The
    functions of :data:`SHAPE_ONLY_FUNCTIONS` pass no mark on, and those of
    :data:`FIRST_ARGUMENT_FUNCTIONS` pass on their first argument's. A
    function of the weights alone (a sigmoid of a gate parameter) is thus
    no layer, whatever its shape. The marks are held weakly, by identity: no
    intermediate tensor lives longer for them. A tensor made from the batch
    outside torch (through NumPy) is not seen as such.
    """

    def __init__(self, kinds, keep, every_function, *, opaque, leaves, batch, torch):
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
        self._n_points = len(batch)
        self._torch = torch
        self._counts = Counter()
        self._running = []  # the modules whose forward is running, outermost first
        self._last_function = {}  # leaf module -> (op, kind, output) of its last call
        # id(tensor) -> a weak reference to each tensor computed from the batch
        marks = self._from_batch = {}

        def forget(dead):
            if marks.get(dead.key) is dead:
                del marks[dead.key]

        self._forget = forget
        self._mark(batch)
        self._copying = False  # our own copies pass through the mode too

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
        op, kind, result = last
        self.kinds[name] = kind
        if op in RELU_FUNCTIONS and output is result:
            self.relus.add(name)
        self._record(name, output, self._keeps(name, kind))

    def function_ran(self, func, args, kwargs, output, found):
        """After any torch function call: pass the batch's mark on, and
        record the call if it is one of :func:`function_table`'s (``found``,
        its ``(op, kind)``)."""
        if self._copying:
            return
        name = getattr(func, "__name__", None)
        if name in SHAPE_ONLY_FUNCTIONS:
            return
        if name in FIRST_ARGUMENT_FUNCTIONS:
            sources = args[:1]
        elif kwargs:
            sources = (*args, *kwargs.values())
        else:
            sources = args
        if not self._any_from_batch(sources):
            return
        self._mark(output)
        if args and _writes_in_place(name):
            self._mark(args[0])
        if found is not None:
            self.function_returned(*found, output)

    def function_returned(self, op, kind, output):
        """Record a call, of the batch, of one of :func:`function_table`'s."""
        # Inside an activation, pooling, affine or attention module the
        # functions are how the module computes its own output: not layers.
        if any(name in self._opaque for name in self._running):
            return
        if isinstance(output, tuple):  # max_pool2d(..., return_indices=True)
            output = output[0]
        # One row per point too (torch.sum(x, dim=0) is of the batch, but no
        # activation of its points).
        torch = self._torch
        if not torch.is_tensor(output) or output.ndim == 0:
            return
        if output.shape[0] != self._n_points:
            return
        where = self._running[-1] if self._running else ""
        if where in self._leaves:
            earlier = self._last_function.get(where)
            if kind != "softmax" or (earlier is not None and earlier[1] != "softmax"):
                kind = "nonlinear"
            self._last_function[where] = (op, kind, output)
            return
        name = f"{where}.{op}" if where else op
        if name in self._modules:
            name += "()"
        self.kinds[name] = kind
        self.functions[name] = op
        if op in RELU_FUNCTIONS:
            self.relus.add(name)
        self._record(name, output, self._keeps(name, kind))

    def _keeps(self, name, kind):
        # "auto" and its indices never take the softmax family.
        return name in self._keep or (self._every_function and kind != "softmax")

    def _any_from_batch(self, values):
        marks = self._from_batch
        for value in values:
            ref = marks.get(id(value))
            if ref is not None and ref() is value:
                return True
            if isinstance(value, (tuple, list)) and self._any_from_batch(value):
                return True
        return False

    def _mark(self, value):
        if isinstance(value, (tuple, list)):  # chunk, max(dim=...), lstm
            for item in value:
                self._mark(item)
            return
        if not isinstance(value, self._torch.Tensor):
            return
        key = id(value)
        ref = self._from_batch.get(key)
        if ref is None or ref() is not value:
            self._from_batch[key] = weakref.KeyedRef(value, self._forget, key)

    def _record(self, name, output, keep):
        key = (name, self._counts[name])
        self._counts[name] += 1
        self.calls.append(key)
        if keep:
            # A copy: a later in-place operation (ReLU(inplace=True)) would
            # otherwise overwrite this output.
            if not self._torch.is_tensor(output):
                self.outputs[key] = type(output).__name__
                return
            self._copying = True
            try:
                self.outputs[key] = output.detach().clone()
            finally:
                self._copying = False

    @contextlib.contextmanager
    def watching_functions(self):
        """Record the calls of the functions of :func:`function_table`."""
        torch = self._torch
        with _recorder_class(torch)(self, function_table(torch)):
            yield


def _writes_in_place(name):
    """Whether the function ``name`` writes into its first argument.

    ``h.add_(x)`` returns ``h``, but ``h[:, :3] = x`` returns ``None``.
    """
    if not isinstance(name, str):
        return False
    return name == "__setitem__" or (name.endswith("_") and not name.endswith("__"))


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
            self.record.function_ran(func, args, kwargs, output, found)
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
