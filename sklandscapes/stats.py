"""Statistics of landscape vectors: permutation test, means, complexity (II-C, II-E)."""

import numbers
import warnings
from dataclasses import dataclass, replace
from itertools import combinations

import numpy as np
from joblib import effective_n_jobs
from scipy.stats import norm
from scipy.stats import t as student_t
from sklearn.base import BaseEstimator
from sklearn.decomposition import PCA
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array, check_is_fitted
from tqdm.auto import tqdm

from sklandscapes._compat import (
    Interval,
    Parallel,
    StrOptions,
    _fit_context,
    delayed,
    validate_params,
)
from sklandscapes._relabelings import (
    BLOCK,
    PairDesign,
    ReplicateCells,
    null_statistics,
)
from sklandscapes._validation import (
    binary_exponent,
    check_feature_matrix,
    check_landscape_vectors,
    check_layered_diagrams,
    validate_float_data,
)
from sklandscapes.exceptions import UnbalancedReplicatesWarning
from sklandscapes.kernels import feature_weights
from sklandscapes.landscapes import tent_squared_integrals

__all__ = [
    "ConfidenceBand",
    "CurveProjection",
    "PermutationTest",
    "confidence_band",
    "holm_adjust",
    "landscape_curve_projection",
    "landscape_norms",
    "mean_landscapes",
    "topological_complexity",
    "unit_means",
]


# Two labelings that give the same partition give the same statistic up to the
# rounding of the quadratic form; a null value within this relative distance of
# the observed one counts as "at least as large".
_TIE_RTOL = 1e-10

# Rounding of the quadratic form w^T K w, in units of eps * max K_ii per sample.
_ROUNDING_PER_SAMPLE = 16

# Entries of a block of rows that landscape_norms multiplies at once.
_ROWS_BUDGET = 1 << 21


def _check_labels(X, y):
    _check_label_values(y)
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != len(X):
        raise ValueError(
            f"y must be 1-D with one label per sample of X: X has {len(X)} samples, "
            f"y has shape {y.shape}."
        )
    groups, counts = np.unique(y, return_counts=True)
    return y, groups, counts


def mean_landscapes(X, y, groups=None):
    """Average landscape vector of each group (paper II-E).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Landscape vectors, e.g. from :class:`~sklandscapes.LandscapeVectorizer`.
    y : array-like of shape (n_samples,)
        Group of each sample (training threshold, class, ...).
    groups : array-like of shape (n_samples,), default=None
        The unit (network) of each sample: the replicates of a unit at one
        label are averaged first, so that every unit weighs the same in the
        mean whatever its number of replicates.

    Returns
    -------
    groups : ndarray of shape (n_groups,)
        The sorted distinct labels.
    means : ndarray of shape (n_groups, n_features)
        ``means[g]`` is the average of the rows of group ``groups[g]``: the
        average activation landscape across networks and input subsamples
        (with ``groups``, the average over units of their replicates' means).

    Examples
    --------
    >>> import numpy as np
    >>> from sklandscapes.stats import mean_landscapes
    >>> groups, means = mean_landscapes(np.array([[0.0, 2.0], [2.0, 4.0], [5.0, 5.0]]),
    ...                                 ["a", "a", "b"])
    >>> groups.tolist(), means.tolist()
    (['a', 'b'], [[1.0, 3.0], [5.0, 5.0]])
    """
    X = check_array(X, dtype=np.float64)
    if groups is not None:
        X, y = _unit_means(X, y, groups)
    y, groups, counts = _check_labels(X, y)
    inverse = np.searchsorted(groups, y)
    sums = np.zeros((len(groups), X.shape[1]))
    np.add.at(sums, inverse, X)
    return groups, sums / counts[:, None]


def unit_means(X, y, groups):
    """Average the replicates of every (unit, label): one row per snapshot.

    Samples that share a unit (e.g. the network they come from) and a label
    (e.g. the training threshold) are replicates of one snapshot, such as
    the input subsamples one network is seen on.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Landscape vectors or complexities.
    y : array-like of shape (n_samples,)
        Label of each sample.
    groups : array-like of shape (n_samples,)
        Unit of each sample.

    Returns
    -------
    means : ndarray of shape (n_snapshots, n_features)
        The mean of each (unit, label)'s samples, sorted by label, then unit.
    labels, units : ndarray of shape (n_snapshots,)
        The label and the unit of each row.

    Examples
    --------
    >>> import numpy as np
    >>> from sklandscapes.stats import unit_means
    >>> means, labels, units = unit_means(
    ...     np.array([[1.0], [3.0], [5.0]]), ["a", "a", "a"], [0, 0, 1])
    >>> means.ravel().tolist(), labels.tolist(), units.tolist()
    ([2.0, 5.0], ['a', 'a'], [0, 1])
    """
    X = check_array(X, dtype=np.float64)
    y, _, _ = _check_labels(X, y)
    cells = _replicate_cells(y, groups)
    if cells.replicated:
        return cells.average(X), cells.labels, cells.units
    # Each sample is its own snapshot: the same rows, in the documented order.
    order = np.lexsort((cells.units, cells.labels))
    return X[order], cells.labels[order], cells.units[order]


@dataclass
class ConfidenceBand:
    """Confidence band for the mean of each group, from :func:`confidence_band`.

    Attributes
    ----------
    groups : ndarray of shape (n_groups,)
        The sorted distinct labels.
    mean : ndarray of shape (n_groups, n_features)
        The mean of each group, as :func:`mean_landscapes` gives it.
    lower, upper : ndarray of shape (n_groups, n_features)
        The band: ``lower <= mean <= upper``.
    confidence : float
        The nominal level, e.g. 0.95.
    simultaneous : bool
        Whether the level holds for all features at once (the whole curve
        inside the band) or for each feature on its own (pointwise).
    method : str
        ``"bootstrap"`` or ``"gaussian"``.

    See Also
    --------
    confidence_band : Computes it.

    Examples
    --------
    >>> import numpy as np
    >>> from sklandscapes.stats import confidence_band
    >>> X = np.random.default_rng(0).normal(size=(30, 4))
    >>> band = confidence_band(X, np.zeros(30), random_state=0)
    >>> band.lower.shape, band.simultaneous, band.method
    ((1, 4), True, 'bootstrap')
    """

    groups: np.ndarray
    mean: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    confidence: float
    simultaneous: bool
    method: str

    @property
    def description(self):
        """The band in words, e.g. for a legend: "95% simultaneous bootstrap band"."""
        kind = "simultaneous" if self.simultaneous else "pointwise"
        return f"{self.confidence:.0%} {kind} {self.method} band"


# Entries of one (n_bootstrap, features) block of resampled deviations.
_BAND_BLOCK_ENTRIES = 2**22


@validate_params(
    {
        "X": ["array-like"],
        "y": ["array-like"],
        "groups": ["array-like", None],
        "confidence": [Interval(numbers.Real, 0, 1, closed="neither")],
        "simultaneous": ["boolean"],
        "method": [StrOptions({"bootstrap", "gaussian"})],
        "n_bootstrap": [Interval(numbers.Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def confidence_band(
    X,
    y,
    *,
    groups=None,
    confidence=0.95,
    simultaneous=True,
    method="bootstrap",
    n_bootstrap=1000,
    random_state=None,
):
    """Confidence band for the mean landscape (or complexity curve) of each group.

    The band of a group is ``mean ± c * se``, with ``se`` the standard error
    of the mean of each feature and ``c`` a critical value:

    * ``simultaneous=True`` (default): ``c`` is the ``confidence`` quantile of
      ``max_j |mean*_j - mean_j| / se_j`` over resamples, so that the whole
      mean curve lies inside the band with probability ``confidence``, all
      features at once (the sup-norm bootstrap band of Chazal et al. [1]_,
      studentized so that the band is narrow where the samples agree). This
      is the band to read a curve by.
    * ``simultaneous=False``: a separate ``c`` per feature, so that the level
      holds at each feature (grid point, layer) alone; the whole curve then
      leaves the band far more often than ``1 - confidence``.

    ``method="bootstrap"`` resamples the samples of the group with
    replacement; ``method="gaussian"`` uses the normal limit of the mean
    (Bubenik [2]_): pointwise it is the Student-t interval, exact for
    Gaussian data; simultaneous, ``c`` is simulated from the Gaussian with
    the samples' covariance (Gaussian multiplier bootstrap).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Landscape vectors, or topological complexities (``(n_samples,
        n_layers)``, e.g. from :func:`topological_complexity`) for a band
        around a complexity curve.
    y : array-like of shape (n_samples,)
        Group of each sample; at least 2 samples (or units) per group.
    groups : array-like of shape (n_samples,), default=None
        The unit (network) of each sample. The replicates of a unit at one
        label (input subsamples seen by one network) are averaged, and the
        band resamples units: it reflects the spread between networks, not
        between samples of one network. ``None``: every sample is a unit.
    confidence : float, default=0.95
        Level of the band, in (0, 1).
    simultaneous : bool, default=True
        Band for all features at once (``True``) or each feature alone.
    method : {"bootstrap", "gaussian"}, default="bootstrap"
        How the critical value is found.
    n_bootstrap : int, default=1000
        Resamples per group, for the bootstrap and for the simultaneous
        Gaussian band; at least ``1 / (1 - confidence)``.
    random_state : int, RandomState instance or None, default=None
        Seeds the resamples (unused by the pointwise Gaussian band).

    Returns
    -------
    band : ConfidenceBand

    See Also
    --------
    mean_landscapes : The means alone.
    sklandscapes.plotting.plot_landscapes : Draws the bands with ``confidence``.
    sklandscapes.plotting.plot_complexity : Draws the band of complexity curves.

    Notes
    -----
    The units of a group are taken as independent draws. Several input
    subsamples seen by one network are not independent of each other: pass
    ``groups`` (the network of each sample), so that they are averaged per
    network and the band reflects the spread between networks.

    A feature with the same value in every sample of a group (a landscape
    that is 0 there in every sample) has a band of width 0. The bootstrap
    deviations are scaled by ``sqrt(n / (n - 1))``, which makes their
    variance the unbiased one. The resamples treat the standard errors as
    known, so the critical value ``c`` they give is mapped through Student's
    t with ``n - 1`` degrees of freedom, ``t_{n-1}^{-1}(Phi(c))``: a single
    feature's band is then the t-interval, and the band allows for the
    noise of the estimated standard errors. The bands are asymptotic: on
    smooth Gaussian curves they cover at the nominal rate, and on small
    groups of skewed values (landscapes near the ends of their bars are
    mostly 0) a little less than ``confidence`` (the tests of
    ``tests/test_stats.py`` simulate both).

    References
    ----------
    .. [1] F. Chazal, B. T. Fasy, F. Lecci, A. Rinaldo, L. Wasserman.
       "Stochastic convergence of persistence landscapes and silhouettes",
       SoCG 2014.
    .. [2] P. Bubenik. "Statistical topological data analysis using
       persistence landscapes", JMLR 16, 2015.

    Examples
    --------
    >>> import numpy as np
    >>> from sklandscapes.stats import confidence_band
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 5)) + np.arange(5)
    >>> band = confidence_band(X, np.repeat(["a", "b"], 20), random_state=0)
    >>> band.groups.tolist(), band.mean.shape, band.description
    (['a', 'b'], (2, 5), '95% simultaneous bootstrap band')
    >>> bool(((band.lower <= band.mean) & (band.mean <= band.upper)).all())
    True
    >>> pointwise = confidence_band(X, np.repeat(["a", "b"], 20),
    ...                             simultaneous=False, method="gaussian")
    >>> bool((pointwise.upper - pointwise.lower < band.upper - band.lower).all())
    True
    """
    X = check_array(X, dtype=np.float64)
    if groups is not None:
        X, y = _unit_means(X, y, groups)
    y, labels, counts = _check_labels(X, y)
    _require_two_per_label(
        labels,
        counts,
        "confidence_band needs at least 2 samples per group to estimate their spread"
        if groups is None
        else "confidence_band needs at least 2 units (groups) per label to "
        "estimate their spread",
        unit="samples" if groups is None else "units",
    )
    resampled = method == "bootstrap" or simultaneous
    # A relative hair of slack: 10 resamples do estimate a 0.9 quantile.
    if resampled and n_bootstrap * (1 - confidence) < 1 - 1e-9:
        raise ValueError(
            f"n_bootstrap={n_bootstrap!r} resamples cannot estimate a "
            f"{confidence!r} quantile; use at least "
            f"{int(np.ceil(1 / (1 - confidence) - 1e-9))} (1000 or more for a "
            "stable band)."
        )
    rng = check_random_state(random_state)
    means = np.empty((len(labels), X.shape[1]))
    lower, upper = np.empty_like(means), np.empty_like(means)
    for g, label in enumerate(labels):
        means[g], half = _band_half_width(
            X[y == label], rng, confidence, simultaneous, method, n_bootstrap
        )
        lower[g] = means[g] - half
        upper[g] = means[g] + half
    return ConfidenceBand(
        labels, means, lower, upper, float(confidence), bool(simultaneous), method
    )


def _band_half_width(rows, rng, confidence, simultaneous, method, n_bootstrap):
    """The mean of ``rows`` and the half width of its band, per feature."""
    n = len(rows)
    mean = rows.mean(axis=0)
    centered = rows - mean
    se = np.sqrt((centered**2).sum(axis=0) / (n - 1) / n)
    if not (method == "bootstrap" or simultaneous):
        critical = student_t.ppf((1 + confidence) / 2, n - 1)
    else:
        if method == "bootstrap":
            draws = rng.multinomial(n, np.full(n, 1 / n), size=n_bootstrap)
            # mean* - mean = (counts / n) @ centered; scaled to the unbiased
            # variance S^2 / n of the mean.
            multipliers = draws / n * np.sqrt(n / (n - 1))
        else:
            # sum_i xi_i (x_i - mean) / sqrt(n (n - 1)) ~ N(0, S / n).
            multipliers = rng.standard_normal((n_bootstrap, n)) / np.sqrt(n * (n - 1))
        critical = _critical_values(multipliers, centered, se, confidence, simultaneous)
        # The resamples treat se as known; mapping c through Student's t
        # accounts for the noise of the estimated se (a single feature's
        # band becomes the t-interval).
        critical = student_t.ppf(norm.cdf(critical), n - 1)
    # A feature that no sample varies on has a band of width 0, even where
    # an extreme critical value maps to t = inf (inf * 0 would be NaN).
    return mean, np.where(se > 0, critical * se, 0.0)


def _critical_values(multipliers, centered, se, confidence, simultaneous):
    """Quantile of ``|multipliers @ centered| / se``: its maximum or per feature.

    Features with ``se == 0`` (equal in every sample) get 0. Features are
    processed in blocks, so that memory does not grow with their number.
    """
    n_resamples = len(multipliers)
    varying = np.flatnonzero(se > 0)
    step = max(1, _BAND_BLOCK_ENTRIES // n_resamples)
    largest = np.zeros(n_resamples)
    critical = np.zeros(len(se))
    for start in range(0, len(varying), step):
        columns = varying[start : start + step]
        studentized = np.abs(multipliers @ centered[:, columns]) / se[columns]
        if simultaneous:
            np.maximum(largest, studentized.max(axis=1), out=largest)
        else:
            critical[columns] = np.quantile(
                studentized, confidence, axis=0, method="higher"
            )
    if simultaneous:
        critical = float(np.quantile(largest, confidence, method="higher"))
    return critical


def landscape_norms(X, shape, grid=None):
    """Topological complexity of each layer: the norm of its landscapes (II-C).

    The norm of layer ``l`` is ``sqrt(sum_dims sum_k integral lambda_k^2 dt)``
    with the quadrature of :class:`~sklandscapes.LandscapeKernel`.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Landscape vectors.
    shape : tuple of 4 ints
        ``(n_layers, n_homology_dimensions, n_landscapes, n_bins)`` of ``X``.
    grid : array-like of shape (n_bins,), default=None
        The vectorizer's ``grid_`` for the trapezoid rule; ``None`` weighs each
        grid point 1 (see :func:`~sklandscapes.kernels.feature_weights`).

    Returns
    -------
    norms : ndarray of shape (n_samples, n_layers)

    Examples
    --------
    >>> import numpy as np
    >>> from sklandscapes.stats import landscape_norms
    >>> X = np.array([[0.0, 3.0, 0.0, 0.0, 4.0, 0.0]])
    >>> landscape_norms(X, shape=(2, 1, 1, 3))
    array([[3., 4.]])
    """
    X, shape = check_landscape_vectors(X, shape)
    weights = feature_weights(X.shape[1], grid)
    # A few rows at a time: the products of the whole matrix at once are
    # temporaries as large as X, slower to allocate than these are to sum.
    squares = np.empty((len(X), shape[0]))
    step = max(1, _ROWS_BUDGET // max(X.shape[1], 1))
    for start in range(0, len(X), step):
        rows = X[start : start + step]
        squares[start : start + step] = (
            (rows * rows * weights).reshape(len(rows), shape[0], -1).sum(axis=2)
        )
    return np.sqrt(squares)


def topological_complexity(X, sample_range=(0.0, 1.0)):
    """Topological complexity of each layer, exact: the norm of all its landscapes.

    The paper (II-C) defines the topological complexity of a persistence
    landscape as its norm. With every level kept it has a closed form in the
    pairs, ``sqrt(sum_dims sum_pairs 2 h^3 / 3)`` with ``h`` half a pair's
    persistence (see :func:`~sklandscapes.landscapes.tent_squared_integrals`),
    so it needs no grid: prefer it to :func:`landscape_norms` wherever bars may
    be narrower than the grid step, as in deep layers, where the trapezoid rule
    on a grid can miss a bar entirely or double it.

    Parameters
    ----------
    X : object array of shape (n_samples, n_layers, n_homology_dimensions) \
            or sequence of diagrams
        Persistence diagrams, as :class:`~sklandscapes.RipsPersistence` gives.
    sample_range : (float, float), default=(0.0, 1.0)
        The landscapes are integrated over this interval, and an infinite
        death is truncated at its end, as :class:`~sklandscapes.
        LandscapeVectorizer` does with the same ``sample_range``.

    Returns
    -------
    complexity : ndarray of shape (n_samples, n_layers)

    See Also
    --------
    landscape_norms : The same norm from landscape vectors on a grid (kept
        levels only, trapezoid rule).

    Examples
    --------
    A single pair (0, 1) has h = 1/2, so its complexity is sqrt(2/3 / 8):

    >>> import numpy as np
    >>> from sklandscapes.stats import topological_complexity
    >>> topological_complexity([np.array([[0.0, 1.0]])])
    array([[0.28867513]])
    >>> float(np.sqrt(2 / 3 / 8))
    0.28867513459481287
    """
    diagrams = check_layered_diagrams(X)
    start, stop = _check_sample_range(sample_range)
    squares = tent_squared_integrals(list(diagrams.ravel()), (start, stop))
    squares = squares.reshape(diagrams.shape).sum(axis=2)
    return np.sqrt(squares)


def _check_sample_range(sample_range):
    try:
        start, stop = (float(v) for v in sample_range)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"sample_range must be a pair of numbers (start, stop), got "
            f"{sample_range!r}."
        ) from exc
    if not (np.isfinite(start) and np.isfinite(stop) and start < stop):
        raise ValueError(
            f"sample_range must be finite with start < stop, got {sample_range!r}."
        )
    return start, stop


@dataclass
class CurveProjection:
    """2-D projection of the activation landscape curves (paper Fig. 3).

    Attributes
    ----------
    groups : ndarray of shape (n_groups,)
        Labels of the curves.
    coordinates : ndarray of shape (n_groups, n_layers, n_components)
        ``coordinates[g, l]`` is the projection of the average landscape of
        layer ``l`` in group ``g``; consecutive layers form the curve.
    explained_variance_ratio : ndarray of shape (n_components,)
        Share of the variance of the average landscapes each axis keeps.

    See Also
    --------
    landscape_curve_projection : Computes it.
    sklandscapes.plotting.plot_landscape_curves : Draws it.

    Examples
    --------
    >>> import numpy as np
    >>> from sklandscapes.stats import landscape_curve_projection
    >>> X = np.random.default_rng(0).random((4, 2 * 1 * 1 * 3))
    >>> proj = landscape_curve_projection(X, ["a", "a", "b", "b"], shape=(2, 1, 1, 3))
    >>> proj.groups.tolist(), proj.coordinates.shape
    (['a', 'b'], (2, 2, 2))
    >>> float(proj.explained_variance_ratio.sum()) <= 1.0
    True
    """

    groups: np.ndarray
    coordinates: np.ndarray
    explained_variance_ratio: np.ndarray


def landscape_curve_projection(X, y, shape, n_components=2, grid=None):
    """Project each group's per-layer average landscapes onto their principal axes.

    The average landscape of every (group, layer) is a point of the landscape
    Hilbert space; a group's layers in order form a piecewise-linear curve. The
    points are weighted by the square root of the quadrature, so that PCA's
    Euclidean geometry is the landscape norm's.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Landscape vectors.
    y : array-like of shape (n_samples,)
        Group of each sample, e.g. the training threshold.
    shape : tuple of 4 ints
        ``(n_layers, n_homology_dimensions, n_landscapes, n_bins)`` of ``X``.
    n_components : int, default=2
        Dimension of the projection.
    grid : array-like of shape (n_bins,), default=None
        See :func:`landscape_norms`.

    Returns
    -------
    projection : CurveProjection

    Examples
    --------
    >>> import numpy as np
    >>> from sklandscapes.stats import landscape_curve_projection
    >>> rng = np.random.default_rng(0)
    >>> X = rng.random((6, 3 * 1 * 2 * 4))
    >>> proj = landscape_curve_projection(X, [0, 0, 0, 1, 1, 1], shape=(3, 1, 2, 4))
    >>> proj.coordinates.shape
    (2, 3, 2)
    """
    X, shape = check_landscape_vectors(X, shape)
    groups, means = mean_landscapes(X, y)
    scaled = means * np.sqrt(feature_weights(X.shape[1], grid))
    points = scaled.reshape(len(groups) * shape[0], -1)
    if not 1 <= n_components <= min(points.shape):
        raise ValueError(
            f"n_components must be between 1 and {min(points.shape)} (the number of "
            f"(group, layer) points and of features), got {n_components!r}."
        )
    pca = PCA(n_components=n_components, svd_solver="full").fit(points)
    coordinates = pca.transform(points).reshape(len(groups), shape[0], n_components)
    return CurveProjection(groups, coordinates, pca.explained_variance_ratio_)


def holm_adjust(pvalues):
    """Holm's step-down adjustment of a family of p-values.

    The ``i``-th smallest of ``m`` p-values is multiplied by ``m - i``
    (``i`` from 0), a running maximum keeps the adjusted values in the same
    order as the raw ones, and values above 1 are cut to 1. Rejecting where
    the adjusted value is at most ``alpha`` keeps the family-wise error rate
    at most ``alpha`` under any dependence between the tests.

    Parameters
    ----------
    pvalues : array-like of shape (n_tests,)
        The raw p-values of the family.

    Returns
    -------
    adjusted : ndarray of shape (n_tests,)
        Holm-adjusted p-values, in the order of ``pvalues``.

    See Also
    --------
    PermutationTest : its ``pvalues_`` above the diagonal form such a family;
        the per-layer p-values are adjusted by Westfall and Young's maxT instead.

    References
    ----------
    S. Holm, "A simple sequentially rejective multiple test procedure",
    Scandinavian Journal of Statistics 6(2), 65-70, 1979.

    Examples
    --------
    >>> from sklandscapes.stats import holm_adjust
    >>> holm_adjust([0.01, 0.04, 0.03, 0.005]).tolist()
    [0.03, 0.06, 0.06, 0.02]
    """
    pvalues = np.asarray(pvalues, dtype=float)
    order = np.argsort(pvalues)
    m = len(pvalues)
    steps = np.maximum.accumulate(pvalues[order] * (m - np.arange(m)))
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(steps, 1.0)
    return adjusted


class PermutationTest(BaseEstimator):
    """Permutation test for a difference of average landscapes between groups.

    The statistic is the distance between the group means in the landscape
    Hilbert space (paper III-C), with the norm of
    :class:`~sklandscapes.LandscapeKernel`. It is computed from the Gram matrix
    ``K``: for the contrast ``w = 1_A / n_A - 1_B / n_B``,
    ``||m_A - m_B||^2 = w^T K w``, so a permutation costs ``O(n^2)`` whatever the
    length of the landscape vectors, and permutations are processed in blocks
    of matrix products whose memory does not grow with ``n_permutations``.

    With more than two groups every pair is tested on its own samples, as in
    the paper's Table I.

    Samples from networks (snapshots at several thresholds, input
    subsamples of a snapshot) are not independent: pass
    ``fit(X, y, groups=network_ids)`` to take the network as the unit
    (Notes; the user guide's "What is the unit of a test?"). Without
    ``groups`` every sample is its own unit, the paper's test.

    Parameters
    ----------
    n_permutations : int, default=10_000
        Number of random relabelings per pair of groups. When a pair has at
        most this many distinct relabelings (``C(n, n_a)`` splits of its
        samples, or ``2**n_units`` sign flips with ``groups``), all of them
        are enumerated instead and the p-value is exact.
    kernel : {"linear", "precomputed"}, default="linear"
        ``"linear"``: X are landscape vectors and ``K`` their inner products.
        ``"precomputed"``: X is the Gram matrix itself, e.g. from
        ``LandscapeKernel().fit(V).transform(V)``.
    grid : array-like of shape (n_bins,), default=None
        Grid of the landscapes for the quadrature (``kernel="linear"``); see
        :class:`~sklandscapes.LandscapeKernel`.
    layer_weights : array-like of shape (n_layers,), default=None
        Weight of each layer's term (``kernel="linear"``).
    n_layers : int, default=None
        Also test every layer on its own, with family-wise error control
        across the layers of each pair (``kernel="linear"`` only): the
        features split into ``n_layers`` equal consecutive blocks, as
        :class:`~sklandscapes.LandscapeVectorizer` orders them (pass
        ``vectorizer.shape_[0]``). ``None`` tests the whole vectors only, and
        the results of the whole-vector test are the same bit for bit either
        way. With ``kernel="precomputed"`` the Gram matrix cannot be split by
        layer, and setting ``n_layers`` raises ``ValueError``.
    random_state : int, RandomState instance or None, default=None
        Seeds the permutations; results are the same for every ``n_jobs``.
    n_jobs : int, default=None
        Number of jobs to run in parallel. ``None`` means 1 unless in a
        :obj:`joblib.parallel_backend` context. ``-1`` means using all
        processors. Blocks of permutations are spread over the jobs.
    verbose : int, default=0
        If positive, a progress bar over the blocks of permutations (tqdm).

    Attributes
    ----------
    groups_ : ndarray of shape (n_groups,)
        The sorted distinct labels.
    statistics_ : ndarray of shape (n_groups, n_groups)
        Distance between the means of every pair of groups (0 on the diagonal).
    pvalues_ : ndarray of shape (n_groups, n_groups)
        ``(1 + #{null >= observed}) / (1 + n_permutations)`` for every pair
        tested on random relabelings, ``#{null >= observed} / n_relabelings``
        for a pair whose relabelings were all enumerated (the observed one
        among them); 1 on the diagonal.
    unit_ : {"sample", "group"}
        What the relabelings move: single samples (``groups=None``), or the
        snapshots of each unit of ``groups``.
    table_ : list of dict
        One record per pair: ``group_a``, ``group_b``, ``n_a``, ``n_b``
        (samples used at each label), ``statistic``, ``pvalue``,
        ``n_relabelings`` (in the null distribution) and ``exhaustive``
        (whether they are all the distinct relabelings). With ``groups``
        also ``n_units`` (units with samples at both labels: the units
        tested), ``n_a_only`` and ``n_b_only`` (units with samples at one
        label only, left out of this pair). :meth:`to_frame` gives a
        DataFrame.
    statistic_ : float
        With exactly two groups: the observed distance between their means.
    pvalue_ : float
        With exactly two groups: its p-value.
    null_distribution_ : ndarray of shape (n_relabelings,)
        With exactly two groups: the statistic under each relabeling
        (``n_permutations`` of them, or every relabeling when enumerated).
    layer_statistics_ : ndarray of shape (n_groups, n_groups, `n_layers`)
        With ``n_layers``: the distance between the means of every pair of
        groups in each layer's term of the norm
        (``statistics_**2`` is their sum of squares).
    layer_pvalues_ : ndarray of shape (n_groups, n_groups, `n_layers`)
        With ``n_layers``: the raw permutation p-value of each layer, from
        the same relabelings as ``pvalues_``; 1 on the diagonal.
    layer_pvalues_adjusted_ : ndarray of shape (n_groups, n_groups, `n_layers`)
        With ``n_layers``: the Westfall-Young step-down maxT adjusted
        p-values over the layers of each pair (see Notes); 1 on the diagonal.
    layer_table_ : list of dict
        With ``n_layers``: one record per (pair, layer): ``group_a``,
        ``group_b``, ``layer``, ``n_a``, ``n_b``, ``statistic``, ``pvalue``,
        ``pvalue_adjusted``. ``to_frame(layers=True)`` gives a DataFrame.
    layer_null_distribution_ : ndarray of shape (`n_layers`, n_relabelings)
        With ``n_layers`` and exactly two groups: each layer's statistic
        under each relabeling.
    n_features_in_ : int
        Number of columns of X seen in ``fit`` (the number of samples with
        ``kernel="precomputed"``).
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of the columns of X, when X is a DataFrame with string column
        names.

    See Also
    --------
    sklandscapes.stats.mean_landscapes : The group means themselves.
    sklearn.model_selection.permutation_test_score : Permutation test of a score.

    Notes
    -----
    **Units** (``groups``). The samples of a unit at one label are
    replicates: they are averaged into one snapshot mean (also from a
    precomputed Gram matrix). A pair of labels is tested on the ``m`` units
    with a snapshot at both; units at one label only are left out of the
    pair and counted in ``table_``. The statistic is the norm of the mean of
    the units' differences ``d_u``; under the null a unit's two snapshots
    are exchangeable, so a relabeling flips the sign of ``d_u`` or not,
    computed from the ``m x m`` Gram matrix of the differences. This keeps
    the level whatever the units' own effects and however many replicates a
    snapshot has, as long as a unit has as many at both labels (else an
    :class:`~sklandscapes.exceptions.UnbalancedReplicatesWarning`).
    ``statistics_`` then averages the tested units, where
    :func:`~sklandscapes.stats.mean_landscapes` averages every unit of a
    label. A sign vector and its opposite give the same statistic, so an
    exact p-value of ``m`` units is at least ``2 / 2**m``: 5 units or fewer
    never reach 0.05.

    **Randomness and scale.** ``random_state`` draws one seed per block of
    relabelings in the parent process, so the results depend neither on
    ``n_jobs`` nor on whether another pair is enumerated. The Gram matrix is
    computed on vectors rescaled by powers of two (exact): any magnitude
    gives the same p-values, and a statistic beyond the float range raises
    ``ValueError``. Statistics at the rounding level of the quadratic form
    (about 1e-8 of the vectors' norms) count as 0.

    **Per-layer tests** (``n_layers``). ``K = sum_l K_l``, one Gram block
    per layer, so every relabeling ``w`` gives each layer's statistic
    ``sqrt(w^T K_l w)``: the layers are tested on exactly the relabelings of
    the whole-vector test, with raw p-values as above. The adjusted p-values
    are the step-down maxT of Westfall and Young [3]_ (Algorithm 4.1), on
    statistics divided by the square root of their mean over all
    relabelings of the pair (the same under every relabeling). They control
    the **family-wise error rate** over the layers of one pair, whatever the
    dependence between layers (strong control, under subset pivotality);
    to claim layers of several pairs at once, correct across pairs too (e.g.
    Holm, :func:`~sklandscapes.stats.holm_adjust`). Memory: one
    ``(n_layers, n, n)`` stack of Gram blocks per pair of ``n`` samples.

    References
    ----------
    .. [1] P. Bubenik. "Statistical topological data analysis using
       persistence landscapes", JMLR 16, 2015.
    .. [2] M. Wheeler, J. Bouza, P. Bubenik. "Activation Landscapes as a
       Topological Summary of Neural Network Performance", IEEE Big Data 2021.
    .. [3] P. H. Westfall, S. S. Young. "Resampling-Based Multiple Testing",
       Wiley, 1993.

    Examples
    --------
    >>> import numpy as np
    >>> from sklandscapes import PermutationTest
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 10))
    >>> X[20:] += 1.0
    >>> y = np.repeat(["early", "late"], 20)
    >>> test = PermutationTest(n_permutations=999, random_state=0).fit(X, y)
    >>> float(test.pvalue_)
    0.001

    Which layers differ: here the vectors have two layers of five features,
    and only the second one moves.

    >>> X = rng.normal(size=(40, 10))
    >>> X[20:, 5:] += 1.0
    >>> test = PermutationTest(n_permutations=999, n_layers=2, random_state=0)
    >>> test.fit(X, y).layer_pvalues_adjusted_[0, 1].round(3).tolist()
    [0.932, 0.001]

    Ten networks, each seen at two thresholds on three input subsamples:
    with the network as the unit, the three subsamples of a snapshot are
    averaged and each network's two snapshots swapped or not, all
    ``2**10`` ways.

    >>> networks = np.tile(np.repeat(np.arange(10), 3), 2)
    >>> y = np.repeat(["early", "late"], 30)
    >>> X = rng.normal(size=(10, 5))[networks] + rng.normal(size=(60, 5))
    >>> X[y == "late"] += 0.5
    >>> test = PermutationTest(random_state=0).fit(X, y, groups=networks)
    >>> test.unit_, test.table_[0]["n_units"], test.table_[0]["n_relabelings"]
    ('group', 10, 1024)
    >>> bool(test.pvalue_ < 0.05)
    True
    """

    _parameter_constraints = {
        "n_permutations": [Interval(numbers.Integral, 1, None, closed="left")],
        "kernel": [StrOptions({"linear", "precomputed"})],
        "grid": ["array-like", None],
        "layer_weights": ["array-like", None],
        "n_layers": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
        "n_jobs": [
            Interval(numbers.Integral, None, -1, closed="right"),
            Interval(numbers.Integral, 1, None, closed="left"),
            None,
        ],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        n_permutations=10_000,
        kernel="linear",
        grid=None,
        layer_weights=None,
        n_layers=None,
        random_state=None,
        n_jobs=None,
        verbose=0,
    ):
        self.n_permutations = n_permutations
        self.kernel = kernel
        self.grid = grid
        self.layer_weights = layer_weights
        self.n_layers = n_layers
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, groups=None, n_replicates=None):
        """Test every pair of groups.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features) or (n_samples, n_samples)
            Landscape vectors, or the Gram matrix with ``kernel="precomputed"``.
        y : array-like of shape (n_samples,)
            Group labels (e.g. the training threshold); at least two groups.
        groups : array-like of shape (n_samples,), default=None
            The unit each sample comes from, e.g. the network whose snapshot
            it is (the ``groups`` of scikit-learn's group splitters). Samples
            that share a unit and a label are replicates of one snapshot and
            are averaged; relabelings swap a unit's two snapshots (see
            Notes). ``None``: every sample is its own unit and relabelings
            move single samples, as in the paper.
        n_replicates : array-like of shape (n_samples,), default=None
            With ``groups``: each row of X is already the mean of this many
            replicates of its (unit, label), one row per (unit, label) (e.g.
            :func:`unit_means` summed chunk by chunk, so that the replicates
            never need to be in memory at once; the experiments do this). The
            test is the one on the replicates themselves, bit for bit: it
            averages them first anyway. The counts enter ``table_`` (``n_a``,
            ``n_b``) and the check of balanced replicates.

        Returns
        -------
        self : PermutationTest
        """
        if y is None:
            raise ValueError(
                "PermutationTest requires y to be passed, but the target y is None; "
                "pass the group label of every sample."
            )
        X, weights = self._validated(X)
        y, _, _ = _check_labels(X, y)
        if n_replicates is not None and groups is None:
            raise ValueError(
                "n_replicates needs groups: it counts the replicates of a (unit, "
                "label) that each row of X averages. Pass groups, or leave out "
                "n_replicates."
            )
        cells = None if groups is None else _replicate_cells(y, groups, n_replicates)
        # gram is the Gram matrix (of the cell means, with groups) scaled by
        # 4**-exponent (exact), so that huge vectors neither overflow nor
        # underflow; statistics scale by 2**exponent. layer_grams (n_layers
        # given) are its per-layer terms at the same scale.
        gram, exponent, layer_grams = self._gram(X, weights, cells)
        labels = y if cells is None else cells.labels
        self.groups_ = _two_or_more_labels(labels, per_label_minimum=cells is None)
        self.unit_ = "sample" if cells is None else "group"
        pairs = list(combinations(range(len(self.groups_)), 2))
        designs = [self._design(labels, cells, a, b) for a, b in pairs]
        if cells is not None:
            _warn_if_unbalanced(designs, cells)
        nulls = self._null_distributions(gram, layer_grams, designs)
        self._record(pairs, designs, gram, layer_grams, nulls, exponent)
        return self

    def _design(self, labels, cells, a, b):
        """How the pair ``(a, b)`` of labels is relabelled, and its counts."""
        value_a, value_b = self.groups_[[a, b]].tolist()
        rows_a = np.flatnonzero(labels == value_a)
        rows_b = np.flatnonzero(labels == value_b)
        if cells is None:
            design = PairDesign(rows_a, rows_b, False, self.n_permutations)
            return design, dict(n_a=len(rows_a), n_b=len(rows_b))
        # Units with a snapshot at both labels; the others are left out of
        # this pair (complete pairs), and counted.
        common, in_a, in_b = np.intersect1d(
            cells.units[rows_a], cells.units[rows_b], return_indices=True
        )
        if len(common) < 2:
            raise ValueError(
                f"groups: labels {value_a!r} and {value_b!r} share {len(common)} "
                "unit(s) with a sample at both; a test with groups as units needs "
                "at least 2 for every pair of labels. Check groups, or drop "
                "labels that few units reach."
            )
        design = PairDesign(rows_a[in_a], rows_b[in_b], True, self.n_permutations)
        return design, dict(
            n_a=int(cells.counts[design.rows_a].sum()),
            n_b=int(cells.counts[design.rows_b].sum()),
            n_units=len(common),
            n_a_only=len(rows_a) - len(common),
            n_b_only=len(rows_b) - len(common),
        )

    def _null_distributions(self, gram, layer_grams, designs):
        """Every pair's null statistics (and per-layer ones), in pair order."""
        rng = check_random_state(self.random_state)
        n_blocks = -(-self.n_permutations // BLOCK)
        # All randomness is decided here, before dispatch.
        seeds = rng.randint(np.iinfo(np.int32).max, size=(len(designs), n_blocks))

        def calls():
            # A generator: blocks are made as joblib dispatches them.
            for p, (design, _) in enumerate(designs):
                _, work, stacked = _pair_matrices(design, gram, layer_grams)
                for make in design.blocks(seeds[p]):
                    yield delayed(null_statistics)(make, work, stacked)

        owners = [
            p for p, (design, _) in enumerate(designs) for _ in range(design.n_blocks)
        ]
        blocks = Parallel(
            n_jobs=effective_n_jobs(self.n_jobs),
            prefer="threads",
            return_as="generator",
        )(calls())
        whole = [[] for _ in designs]
        layers = [[] for _ in designs]
        progress = tqdm(
            blocks,
            total=len(owners),
            disable=not self.verbose,
            desc="Permutation tests",
            unit="block",
        )
        for null, p in zip(progress, owners):
            if layer_grams is not None:
                null, layer_null = null
                layers[p].append(layer_null)
            whole[p].append(null)
        return [
            (
                np.concatenate(w),
                None if layer_grams is None else np.concatenate(lay, axis=1),
            )
            for w, lay in zip(whole, layers)
        ]

    def _record(self, pairs, designs, gram, layer_grams, nulls, exponent):
        """Fitted attributes from the observed statistics and the nulls."""
        k = len(self.groups_)
        self.statistics_ = np.zeros((k, k))
        self.pvalues_ = np.ones((k, k))
        self.table_ = []
        if layer_grams is not None:
            n_layers = len(layer_grams)
            self.layer_statistics_ = np.zeros((k, k, n_layers))
            self.layer_pvalues_ = np.ones((k, k, n_layers))
            self.layer_pvalues_adjusted_ = np.ones((k, k, n_layers))
            self.layer_table_ = []
        for (a, b), (design, counts), (null, layer_null) in zip(pairs, designs, nulls):
            sub, work, _ = _pair_matrices(design, gram, None)
            observed = _observed(design, work, null)
            observed, null = _zero_below_rounding(observed, null, _rounding_floor(sub))
            exceed = int((null >= observed * (1 - _TIE_RTOL)).sum())
            pvalue = design.pvalue(exceed)
            observed, null = _scaled_back(
                observed, null, exponent, self.groups_[[a, b]]
            )
            self.statistics_[a, b] = self.statistics_[b, a] = observed
            self.pvalues_[a, b] = self.pvalues_[b, a] = pvalue
            self.table_.append(
                dict(
                    group_a=self.groups_[a],
                    group_b=self.groups_[b],
                    **counts,
                    statistic=observed,
                    pvalue=pvalue,
                    n_relabelings=design.n_null,
                    exhaustive=design.exhaustive,
                )
            )
            if k == 2:
                self.statistic_, self.pvalue_ = observed, pvalue
                self.null_distribution_ = null
            if layer_grams is not None:
                self._test_layers(
                    a, b, design, counts, layer_grams, layer_null, exponent
                )

    def _test_layers(self, a, b, design, counts, layer_grams, null, exponent):
        """Per-layer statistics, raw and Westfall-Young p-values of one pair."""
        groups = self.groups_
        rows = design.rows
        observed = np.empty(len(layer_grams))
        standardized = np.zeros_like(null)
        observed_standardized = np.zeros(len(layer_grams))
        for layer, full in enumerate(layer_grams):
            sub = full[np.ix_(rows, rows)]
            work = design.work_gram(sub)
            floor = _rounding_floor(sub)
            value = _observed(design, work, null[layer])
            value, null[layer] = _zero_below_rounding(value, null[layer], floor)
            observed[layer] = value
            # Each layer on the scale of its mean square over all
            # relabelings, which depends only on the pooled rows.
            scale = np.sqrt(max(design.mean_square(work), 0.0))
            # A layer at the rounding level of its Gram block (the same
            # landscape in every sample) cannot differ: it stays at 0.
            if scale > floor:
                standardized[layer] = null[layer] / scale
                observed_standardized[layer] = value / scale
        exceed = (null >= observed[:, None] * (1 - _TIE_RTOL)).sum(axis=1)
        raw = design.pvalue(exceed)
        adjusted = _westfall_young(observed_standardized, standardized, design.pvalue)
        for layer in range(len(layer_grams)):
            observed[layer], null[layer] = _scaled_back(
                observed[layer], null[layer], exponent, groups[[a, b]]
            )
            self.layer_table_.append(
                dict(
                    group_a=groups[a],
                    group_b=groups[b],
                    layer=layer,
                    n_a=counts["n_a"],
                    n_b=counts["n_b"],
                    statistic=observed[layer],
                    pvalue=raw[layer],
                    pvalue_adjusted=adjusted[layer],
                )
            )
        self.layer_statistics_[a, b] = self.layer_statistics_[b, a] = observed
        self.layer_pvalues_[a, b] = self.layer_pvalues_[b, a] = raw
        self.layer_pvalues_adjusted_[a, b] = adjusted
        self.layer_pvalues_adjusted_[b, a] = adjusted
        if len(groups) == 2:
            self.layer_null_distribution_ = null

    def _validated(self, X):
        """X checked for the kernel, and the quadrature weights (linear)."""
        if self.kernel == "precomputed":
            if self.n_layers is not None:
                raise ValueError(
                    f"n_layers={self.n_layers!r} needs kernel='linear': a "
                    "precomputed Gram matrix cannot be split into its layers' "
                    "terms. Pass the landscape vectors with kernel='linear' (and "
                    "the grid and layer_weights of your kernel), or n_layers=None."
                )
            K = validate_float_data(self, X)
            if K.shape[0] != K.shape[1]:
                raise ValueError(
                    f"kernel='precomputed' needs a square Gram matrix, got shape "
                    f"{K.shape}."
                )
            _check_symmetric(K)
            return K, None
        check_feature_matrix(X)
        X = validate_float_data(self, X)
        weights = feature_weights(X.shape[1], self.grid, self.layer_weights)
        self._check_n_layers(X.shape[1])
        return X, weights

    def _gram(self, X, weights, cells):
        """The Gram matrix scaled by ``4**-exponent``, and its layer terms.

        With ``cells``, of the cell means: the rows (or the precomputed Gram
        matrix) are averaged over each cell's replicates first.
        """
        if self.kernel == "precomputed":
            K = X if cells is None else cells.average_gram(X)
            half = -(-binary_exponent(K) // 2)
            return np.ldexp(K, -2 * half), half, None
        row_exponent = binary_exponent(X)
        weight_exponent = binary_exponent(weights)
        weight_exponent += weight_exponent % 2
        rows = np.ldexp(X, -row_exponent)
        if cells is not None:
            rows = cells.average(rows)
        scaled_weights = np.ldexp(weights, -weight_exponent)
        gram = (rows * scaled_weights) @ rows.T
        layer_grams = None
        if self.n_layers is not None:
            width = X.shape[1] // self.n_layers
            layer_grams = np.stack(
                [
                    (rows[:, block] * scaled_weights[block]) @ rows[:, block].T
                    for block in (
                        slice(layer * width, (layer + 1) * width)
                        for layer in range(self.n_layers)
                    )
                ]
            )
        return gram, row_exponent + weight_exponent // 2, layer_grams

    def _check_n_layers(self, n_features):
        if self.n_layers is None:
            return
        n_bins = 1 if self.grid is None else len(np.ravel(self.grid))
        if n_features % self.n_layers or (n_features // self.n_layers) % n_bins:
            raise ValueError(
                f"n_layers={self.n_layers!r} does not split the {n_features} "
                "features of X into equal blocks of whole landscapes"
                + (f" of {n_bins} grid points" if n_bins > 1 else "")
                + "; pass vectorizer.shape_[0] of the LandscapeVectorizer that "
                "made X."
            )
        if self.layer_weights is not None and len(self.layer_weights) != self.n_layers:
            raise ValueError(
                f"layer_weights has {len(self.layer_weights)} weights but "
                f"n_layers={self.n_layers!r}; give one weight per layer."
            )

    def to_frame(self, layers=False):
        """The results as a pandas DataFrame (needs pandas).

        Parameters
        ----------
        layers : bool, default=False
            ``False``: one row per pair of groups (``table_``). ``True``: one
            row per (pair, layer), with raw and adjusted p-values
            (``layer_table_``; needs ``n_layers``).

        Returns
        -------
        frame : pandas.DataFrame
        """
        check_is_fitted(self)
        if layers and not hasattr(self, "layer_table_"):
            raise ValueError(
                "to_frame(layers=True) needs the per-layer tests: fit with "
                "n_layers set (e.g. n_layers=vectorizer.shape_[0])."
            )
        try:
            import pandas as pd
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("to_frame needs pandas: pip install pandas") from exc
        return pd.DataFrame.from_records(self.layer_table_ if layers else self.table_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # X is a Gram matrix with kernel="precomputed", as for SVC.
        tags.input_tags.pairwise = self.kernel == "precomputed"
        tags.target_tags.required = True
        return tags


def _check_symmetric(K):
    """Refuse a Gram matrix that differs from its transpose beyond rounding.

    In blocks of rows: the differences of a whole matrix of 10,000 samples
    would be temporaries of 0.8 GB each.
    """
    scale = max(float(K.max()), -float(K.min()), np.finfo(float).tiny)
    step = max(1, _ROWS_BUDGET // max(len(K), 1))
    largest = 0.0
    for start in range(0, len(K), step):
        rows = slice(start, start + step)
        difference = np.abs(K[rows] - K[:, rows].T)
        largest = max(largest, float(difference.max()))
    if not largest <= 1e-10 * scale:
        raise ValueError(
            "kernel='precomputed' needs a symmetric Gram matrix; X differs "
            f"from its transpose by up to {largest:.3g}."
        )


def _westfall_young(observed, null, pvalue):
    """Step-down maxT adjusted p-values (Westfall & Young 1993, Algorithm 4.1).

    ``observed`` (n_tests,) and ``null`` (n_tests, n_relabelings) are
    statistics on a common scale, large meaning significant, the null
    columns computed from the same relabelings for every test. ``pvalue``
    turns counts of exceedances into p-values (``PairDesign.pvalue``).
    """
    order = np.argsort(-observed, kind="stable")
    # successive[i]: per relabeling, the maximum over the tests ranked i and
    # below (less significant).
    successive = np.maximum.accumulate(null[order[::-1]], axis=0)[::-1]
    exceed = (successive >= observed[order][:, None] * (1 - _TIE_RTOL)).sum(axis=1)
    # A test is not more significant than one ranked above it.
    stepped = np.maximum.accumulate(pvalue(exceed))
    adjusted = np.empty_like(stepped)
    adjusted[order] = stepped
    return adjusted


def _check_label_values(y, name="y"):
    """Refuse labels that cannot be grouped: NaN, None, and mixed types.

    ``np.unique`` puts each NaN in a group of its own, cannot sort None among
    numbers, and ``np.asarray([1, "a"])`` quietly turns 1 into "1".
    """
    if isinstance(y, (str, bytes)) or np.ndim(y) != 1:
        return
    kinds = {}
    for i, label in enumerate(np.asarray(y, dtype=object)):
        if label is None:
            raise ValueError(
                f"{name} contains None (at position {i}); every sample needs a "
                f"{'unit' if name == 'groups' else 'group label'}."
            )
        if isinstance(label, (str, bytes, np.str_, np.bytes_)):
            kind = "str"
        elif isinstance(label, numbers.Number):
            if label != label:
                raise ValueError(
                    f"{name} contains NaN (at position {i}); every sample needs a "
                    f"{'unit' if name == 'groups' else 'label'}: drop those samples "
                    "or give them one."
                )
            kind = "number"
        else:
            kind = type(label).__name__
        kinds.setdefault(kind, (i, label))
    if len(kinds) > 1:
        examples = ", ".join(
            f"{label!r} at position {i}" for i, label in kinds.values()
        )
        raise ValueError(
            f"{name} mixes labels of different types ({examples}); use labels of one "
            "type, e.g. all strings."
        )


def _scaled_back(observed, null, exponent, pair):
    """The statistics of a pair of groups at their own scale, or a clear error."""
    if np.isnan(observed) or np.isnan(null).any():
        # Cannot happen on the rescaled Gram matrix; a NaN would otherwise count
        # as never exceeded and give the smallest p-value.
        raise ValueError(
            f"The statistic of groups {pair[0]!r} and {pair[1]!r} is NaN; check X."
        )
    with np.errstate(over="ignore"):
        observed = float(np.ldexp(observed, exponent))
        null = np.ldexp(null, exponent)
    if not (np.isfinite(observed) and np.isfinite(null).all()):
        raise ValueError(
            f"The distance between the means of groups {pair[0]!r} and "
            f"{pair[1]!r} exceeds the float range (about 2**{exponent}); divide X "
            "by a constant: p-values do not depend on the scale."
        )
    return observed, null


def _zero_below_rounding(observed, null, floor):
    """Statistics at the rounding level of ``w^T K w`` set to exactly 0.

    For identical groups the quadratic form is 0 plus rounding of about
    ``n * eps * max K_ii`` (the contrast's entries sum to 2 in absolute value),
    whose square root, 1e-8 of the norms, would otherwise be a statistic, and
    the p-value a coin toss instead of 1. ``floor`` is
    :func:`_rounding_floor` of the pair's block of ``K``.
    """
    observed = observed if observed > floor else 0.0
    return observed, np.where(null > floor, null, 0.0)


def _rounding_floor(gram):
    """A statistic ``sqrt(w^T K w)`` at most this large is rounding of ``K``."""
    eps = np.finfo(np.float64).eps
    largest = max(float(np.diag(gram).max()), 0.0)
    return np.sqrt(_ROUNDING_PER_SAMPLE * len(gram) * eps * largest)


def _replicate_cells(y, groups, n_replicates=None):
    """``groups`` checked against ``y``, and the cells of replicates.

    With ``n_replicates``, each row is a cell already: its count is taken
    from there.
    """
    _check_label_values(groups, name="groups")
    groups = np.asarray(groups)
    if groups.ndim != 1 or len(groups) != len(y):
        raise ValueError(
            f"groups must be 1-D with one unit per sample: y has {len(y)} labels, "
            f"groups has shape {groups.shape}."
        )
    cells = ReplicateCells.from_samples(y, groups)
    if n_replicates is None:
        return cells
    counts = np.asarray(n_replicates)
    if (
        counts.shape != (len(y),)
        or counts.dtype.kind not in "iu"
        or (counts.size and counts.min() < 1)
    ):
        raise ValueError(
            "n_replicates must be 1-D with one positive integer count per row of "
            f"X ({len(y)}), got {n_replicates!r}."
        )
    if cells.replicated:
        cell = int(np.flatnonzero(np.bincount(cells.of_sample) > 1)[0])
        raise ValueError(
            "n_replicates: each row of X must be the mean of its (unit, label), "
            f"one row per (unit, label); unit {_plain(cells.units[cell])!r} has "
            f"{np.bincount(cells.of_sample)[cell]} rows at label "
            f"{_plain(cells.labels[cell])!r}. Average them first (unit_means), "
            "or leave out n_replicates."
        )
    return replace(cells, counts=counts.astype(np.intp))


def _unit_means(X, y, groups):
    """One row per (unit, label): the mean of its replicates, and its label."""
    means, labels, _ = unit_means(X, y, groups)
    return means, labels


def _two_or_more_labels(labels, per_label_minimum):
    """The sorted distinct labels; at least two, each with 2 rows if asked."""
    values, counts = np.unique(labels, return_counts=True)
    if len(values) < 2:
        raise ValueError(
            f"y has a single group (one class), {values.tolist()!r}; a permutation "
            "test compares at least two groups."
        )
    if per_label_minimum:
        _require_two_per_label(values, counts, "every group needs at least 2 samples")
    return values


def _require_two_per_label(values, counts, message, unit="samples"):
    """Refuse labels with fewer than 2 rows, naming each of them."""
    small = [(v, c) for v, c in zip(values.tolist(), counts.tolist()) if c < 2]
    if small:
        raise ValueError(
            f"{message}; too small: "
            + ", ".join(
                f"group {v!r} has {c}" + ("" if unit == "samples" else f" {unit}")
                for v, c in small
            )
        )


def _warn_if_unbalanced(designs, cells):
    """Warn once when a tested unit has unequal replicates at two labels."""
    for design, _ in designs:
        counts_a = cells.counts[design.rows_a]
        counts_b = cells.counts[design.rows_b]
        unequal = np.flatnonzero(counts_a != counts_b)
        if len(unequal):
            u = unequal[0]
            warnings.warn(
                f"groups: {len(unequal)} unit(s) have unequal numbers of samples "
                f"at labels {_plain(cells.labels[design.rows_a[u]])!r} and "
                f"{_plain(cells.labels[design.rows_b[u]])!r} (unit "
                f"{_plain(cells.units[design.rows_a[u]])!r}: {counts_a[u]} and "
                f"{counts_b[u]}); their two means are not exchangeable when the "
                "samples' noise is skewed, and the test can miss its level. Give "
                "every unit the same number of samples at each label.",
                UnbalancedReplicatesWarning,
                # Past fit and scikit-learn's wrapper of it: the user's call.
                stacklevel=4,
            )
            return


def _plain(value):
    """A NumPy scalar as the Python value it holds, for messages."""
    return value.item() if isinstance(value, np.generic) else value


def _observed(design, work, null):
    """The statistic of the observed labels.

    Where every relabeling is enumerated, the observed labels are one of
    them: their statistic is taken from the null distribution, so that it
    ties with itself exactly and the p-value is at least ``1 / N``.
    """
    if design.exhaustive:
        return float(null[design.observed_index])
    contrast = design.observed_contrast()
    return float(np.sqrt(max(contrast @ work @ contrast, 0.0)))


def _pair_matrices(design, gram, layer_grams):
    """The pair's block of ``gram``, the matrix its contrasts act on, and the
    layers' such matrices side by side (``None`` without layers)."""
    rows = design.rows
    sub = gram[np.ix_(rows, rows)]
    stacked = None
    if layer_grams is not None:
        # (n, n_layers * n): one matrix product gives every layer's
        # statistic of a relabeling.
        stacked = np.concatenate(
            [design.work_gram(layer[np.ix_(rows, rows)]) for layer in layer_grams],
            axis=1,
        )
    return sub, design.work_gram(sub), stacked
