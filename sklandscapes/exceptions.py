"""Warnings and errors raised by sklandscapes."""

__all__ = [
    "SklandscapesWarning",
    "DamagedFileWarning",
    "GridWarning",
    "NoHiddenLayerWarning",
    "UnbalancedReplicatesWarning",
]


class SklandscapesWarning(UserWarning):
    """Base class of every warning that sklandscapes emits.

    Filter it to silence (or raise) all of them at once.

    Examples
    --------
    >>> import warnings
    >>> from sklandscapes.exceptions import GridWarning, SklandscapesWarning
    >>> issubclass(GridWarning, SklandscapesWarning)
    True
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("error", SklandscapesWarning)
    ...     # any sklandscapes warning raised here becomes an exception
    """


class GridWarning(SklandscapesWarning):
    """A landscape grid could not be learned as asked and a fallback was used.

    Examples
    --------
    With ``sample_range="auto"``, diagrams without a finite pair leave nothing
    to learn the grid from, so ``[0, 1]`` is used:

    >>> import warnings
    >>> import numpy as np
    >>> from sklandscapes import LandscapeVectorizer
    >>> from sklandscapes.exceptions import GridWarning
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     vectorizer = LandscapeVectorizer(sample_range="auto", resolution=3)
    ...     vectorizer = vectorizer.fit([np.empty((0, 2))])
    >>> caught[0].category is GridWarning, vectorizer.grid_.tolist()
    (True, [0.0, 0.5, 1.0])
    """


class DamagedFileWarning(SklandscapesWarning):
    """A stored file was truncated or corrupted, so it was deleted and recomputed.

    Resuming a run (``--resume``, or ``resume=True``) reads every stored file it
    reuses; one that cannot be read back whole is reported with this warning,
    on one line, and computed again. Nothing is lost but the time to recompute
    it; filter this class to silence the report.

    Examples
    --------
    >>> from sklandscapes.exceptions import DamagedFileWarning, SklandscapesWarning
    >>> issubclass(DamagedFileWarning, SklandscapesWarning)
    True
    """


class NoHiddenLayerWarning(SklandscapesWarning):
    """``layers="auto"`` found no hidden layer in a network, only its logits.

    :class:`~sklandscapes.ActivationExtractor` and
    :func:`~sklandscapes.activation_layers` take as hidden layers the outputs
    of activation and pooling modules and functions that follow an affine
    module. A network whose nonlinearity they do not recognise (``torch.clamp``,
    say) would otherwise give the input and the logits only, without a word.
    Name its layers in ``layers``, or filter this class for a network that is
    affine on purpose.

    Examples
    --------
    >>> import warnings
    >>> from torch import nn
    >>> from sklandscapes import activation_layers
    >>> from sklandscapes.exceptions import NoHiddenLayerWarning
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     names = activation_layers(nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 2)))
    >>> names, caught[0].category is NoHiddenLayerWarning
    (['1'], True)
    """


class UnbalancedReplicatesWarning(SklandscapesWarning):
    """Units of a paired permutation test have unequal replicates per label.

    With ``PermutationTest.fit(..., groups=...)``, the replicates of a unit at
    one label are averaged and a relabeling swaps the unit's two means. When
    a unit has more samples at one label than at the other, its two means
    are not exchangeable if the samples' noise is skewed (landscape values
    are), and the test can reject more or less often than its level. Give
    every unit the same number of samples at each label, or filter this class
    once you have checked that the noise is symmetric.

    Examples
    --------
    >>> from sklandscapes.exceptions import (
    ...     SklandscapesWarning, UnbalancedReplicatesWarning)
    >>> issubclass(UnbalancedReplicatesWarning, SklandscapesWarning)
    True
    """
