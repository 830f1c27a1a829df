"""A skorch classifier over :class:`MLP`, configured as in the paper."""

import numbers

import torch
from sklearn.utils import check_random_state
from skorch import NeuralNetClassifier
from skorch.callbacks import EpochScoring

from sklandscapes._devices import resolve_device  # noqa: F401 (nets' import path)
from sklandscapes.nets._mlp import MLP
from sklandscapes.nets._threads import torch_threads

__all__ = [
    "ThreadedNeuralNetClassifier",
    "make_mlp_classifier",
    "train_accuracy_scoring",
]


class ThreadedNeuralNetClassifier(NeuralNetClassifier):
    """skorch's ``NeuralNetClassifier`` that trains with few torch threads.

    ``fit`` and ``partial_fit`` run inside :func:`torch_threads`
    ``(n_threads)``: by default one thread unless you chose a count, restored
    when training ends. Everything else is skorch's
    ``NeuralNetClassifier``; :func:`make_mlp_classifier` returns one.

    Parameters
    ----------
    module : torch module class or instance
        As for ``NeuralNetClassifier``.
    *args, **kwargs
        Any other ``NeuralNetClassifier`` parameter.
    n_threads : int or None, default=None
        torch's intra-op threads while training; ``None`` keeps the count you
        chose (``OMP_NUM_THREADS``, ``MKL_NUM_THREADS`` or
        ``torch.set_num_threads`` after importing ``sklandscapes.nets``) and
        otherwise uses 1 (see :func:`torch_threads` for why). A parameter
        like the others: ``set_params``, ``clone`` and ``GridSearchCV`` see it.

    See Also
    --------
    torch_threads : The rule, as a context manager.

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from sklandscapes.nets import MLP, ThreadedNeuralNetClassifier
    >>> X = np.array([[-1.0, 0.0], [1.0, 0.0]] * 16, dtype=np.float32)
    >>> y = np.array([0, 1] * 16)
    >>> net = ThreadedNeuralNetClassifier(
    ...     MLP, module__widths=(2, 8, 2), criterion=torch.nn.CrossEntropyLoss,
    ...     max_epochs=2, train_split=None, verbose=0, n_threads=1)
    >>> net.fit(X, y).get_params()["n_threads"]
    1
    """

    def __init__(self, module, *args, n_threads=None, **kwargs):
        super().__init__(module, *args, **kwargs)
        self.n_threads = n_threads

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        # fit calls partial_fit, so both train inside the block.
        with torch_threads(self.n_threads):
            return super().partial_fit(X, y, classes=classes, **fit_params)


def resolve_seed(random_state):
    """An int seed for torch generators from a scikit-learn ``random_state``."""
    if random_state is None:
        return None
    if isinstance(random_state, numbers.Integral) and not isinstance(
        random_state, bool
    ):
        return int(random_state)
    return int(check_random_state(random_state).randint(2**31 - 1))


def train_accuracy_scoring(name="train_acc"):
    """Scoring callback: accuracy after each epoch on the whole training set.

    skorch's ``EpochScoring(on_train=True)`` caches the predictions made while
    the epoch trained, so by default it scores a model that changed from batch
    to batch. With ``use_caching=False`` it predicts the training set again
    with the model as it is after the epoch, which is the accuracy a snapshot
    of that model has; this is the semantics of every training accuracy in
    :mod:`sklandscapes.nets`.

    Parameters
    ----------
    name : str, default="train_acc"
        The history key.

    Returns
    -------
    callback : skorch.callbacks.EpochScoring

    Examples
    --------
    >>> from sklandscapes.nets import train_accuracy_scoring
    >>> train_accuracy_scoring().use_caching
    False
    """
    return EpochScoring(
        "accuracy",
        on_train=True,
        use_caching=False,
        name=name,
        lower_is_better=False,
    )


def make_mlp_classifier(
    widths,
    activation="relu",
    *,
    lr=1e-3,
    max_epochs=100,
    batch_size=128,
    device="auto",
    random_state=None,
    callbacks=None,
    n_threads=None,
    **kwargs,
):
    """A skorch ``NeuralNetClassifier`` over :class:`MLP`, trained with Adam.

    The module outputs logits and the criterion is
    ``torch.nn.CrossEntropyLoss`` (so ``predict_proba`` applies the softmax).
    Training data are shuffled every epoch. The history records
    ``"train_acc"``: the accuracy of the model after each epoch on the whole
    training set (see :func:`train_accuracy_scoring`), which
    :class:`AccuracyThresholdSnapshots` reads.

    Parameters
    ----------
    widths : sequence of int
        Input, hidden and output widths of the :class:`MLP`.
    activation : str or nn.Module subclass, default="relu"
        Its activation.
    lr : float, default=1e-3
        Adam's learning rate. The paper trains with Adam but its value is
        missing from the text we have, and the authors' research scripts
        default to several (0.02, 0.05); the default here is torch's Adam
        default. Set it explicitly to reproduce a particular run.
    max_epochs : int, default=100
        Most epochs to train (an :class:`AccuracyThresholdSnapshots` callback
        may stop earlier).
    batch_size : int, default=128
        Minibatch size.
    device : str or torch.device, default="auto"
        ``"auto"`` picks ``"cuda"`` when torch sees a GPU, else ``"cpu"``.
    random_state : int, RandomState instance or None, default=None
        Seeds the initial weights (a local generator, see :class:`MLP`) and the
        shuffling of the training data (a local ``torch.Generator`` handed to
        the training ``DataLoader``). ``None`` uses torch's global random
        state, as skorch does. The generator advances as it is used: a net
        fresh from this factory (or a ``clone`` of one) is reproducible; fitting
        the same object again continues its stream.
    callbacks : list or None, default=None
        Further skorch callbacks, run after the ``"train_acc"`` scoring.
    n_threads : int or None, default=None
        torch's intra-op threads while the net trains (``fit`` and
        ``partial_fit``; restored afterwards). ``None`` keeps the count you
        chose, with ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS`` or
        ``torch.set_num_threads`` after importing ``sklandscapes.nets``, and
        otherwise uses **1 thread**, as :func:`train_networks` does: on a
        machine that another job keeps busy, torch's threads wait on each
        other and small networks train many times slower
        (``benchmarks/bench_threads.py`` measures it). See
        :func:`torch_threads`.
    **kwargs
        Any other ``NeuralNetClassifier`` parameter, overriding ours (for
        instance ``train_split=None`` to train on all of ``X``; skorch's
        default holds out a stratified fifth of it for validation,
        ``verbose=0``, ``optimizer__weight_decay=...``).

    Returns
    -------
    net : ThreadedNeuralNetClassifier
        A skorch ``NeuralNetClassifier``, not fitted.

    See Also
    --------
    AccuracyThresholdSnapshots : Snapshots at training-accuracy thresholds.
    train_networks : Many networks of one architecture trained at once.

    Examples
    --------
    >>> import numpy as np
    >>> from sklandscapes.nets import make_mlp_classifier
    >>> X = np.array([[-1.0, 0.0], [1.0, 0.0]] * 16, dtype=np.float32)
    >>> y = np.array([0, 1] * 16)
    >>> net = make_mlp_classifier((2, 8, 2), lr=0.05, max_epochs=20,
    ...                           train_split=None, random_state=0, verbose=0,
    ...                           device="cpu")
    >>> net = net.fit(X, y)
    >>> float(net.history[-1, "train_acc"])
    1.0
    >>> net.predict(X[:4])
    array([0, 1, 0, 1])
    """
    params = dict(
        n_threads=n_threads,
        module=MLP,
        module__widths=widths,
        module__activation=activation,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=lr,
        max_epochs=max_epochs,
        batch_size=batch_size,
        device=resolve_device(device),
        iterator_train__shuffle=True,
        callbacks=[("train_acc", train_accuracy_scoring()), *(callbacks or [])],
    )
    seed = resolve_seed(random_state)
    if seed is not None:
        params["module__random_state"] = seed
        params["iterator_train__generator"] = torch.Generator().manual_seed(seed)
    params.update(kwargs)
    return ThreadedNeuralNetClassifier(**params)
