"""Normalization of activation clouds before persistent homology (paper II-D)."""

import numpy as np
from scipy.spatial.distance import cdist, pdist
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import NotFittedError

from sklandscapes._base import StatelessTransformerMixin
from sklandscapes._compat import StrOptions, _fit_context
from sklandscapes._distances import LayerDistances
from sklandscapes._validation import (
    _raise_if_errors,
    _where,
    binary_exponent,
    check_layered_clouds,
)

__all__ = ["ActivationNormalizer", "max_pairwise_distance"]

# Rows per block when the diameter of a large cloud is computed blockwise: a
# block of distances then takes at most 2048 * n * 8 bytes.
_BLOCK = 2048


def max_pairwise_distance(points):
    """Largest Euclidean distance between two rows of ``points``, exactly.

    Computed blockwise for large clouds, so memory stays linear in the number
    of points instead of quadratic.

    Parameters
    ----------
    points : ndarray of shape (n_points, n_features)

    Returns
    -------
    diameter : float

    Examples
    --------
    >>> import numpy as np
    >>> from sklandscapes.normalization import max_pairwise_distance
    >>> float(max_pairwise_distance(np.array([[0.0, 0.0], [3.0, 4.0], [1.0, 1.0]])))
    5.0
    """
    n = len(points)
    if n < 2:
        return 0.0
    if n <= _BLOCK:
        return float(pdist(points).max())
    best = 0.0
    for start in range(0, n, _BLOCK):
        block = points[start : start + _BLOCK]
        # Only pairs (i, j) with j >= start: the rest were seen in earlier blocks.
        best = max(best, float(cdist(block, points[start:]).max()))
    return best


class ActivationNormalizer(StatelessTransformerMixin, TransformerMixin, BaseEstimator):
    """Normalize every activation cloud as in the paper, one cloud at a time.

    Stateless: each (sample, layer) cloud is normalized on its own, so ``fit``
    only validates the parameters. Cells may also be
    :class:`~sklandscapes.LayerDistances` (from
    ``ActivationExtractor(output="distances")``): they are normalized to the
    distances and norms of the normalized cloud, without the cloud.

    Parameters
    ----------
    method : {"global", "local"}, default="global"
        ``"global"`` (paper II-D, step 1): translate the mean to the origin,
        then scale so that the largest pairwise distance is 1. Every Rips
        filtration value then lies in [0, 1].

        ``"local"`` (paper II-D, local step 1): center (see ``center``), rescale
        so that the median norm is 1, and replace every vector of norm greater
        than 1 by its unit vector. Use it before
        ``RipsPersistence(local=True, radius=1.0)``.
    center : {"auto", True, False} or sequence of bool, default="auto"
        Used by ``method="local"`` only (``"global"`` always centers). The
        paper centers every layer that does not end with a ReLU (the input
        and the logits) and leaves the ReLU layers as they are, so that the
        origin keeps its meaning.

        - a sequence of bool, one per layer: the paper's rule when the layer
          kinds are known; :func:`~sklandscapes.relu_layers` gives them for a
          network (``center = ~relu_layers(network, batch)``).
        - ``True`` / ``False``: every layer alike.
        - ``"auto"``: a guess from the data, for clouds of unknown origin:
          center unless every coordinate is >= 0. It is wrong for layers that
          are non-negative without a ReLU, such as an input of pixel
          intensities, which the paper's rule centers.

    Attributes
    ----------
    n_layers_ : int
        Number of layers (columns of X) seen in ``fit``; only
        :meth:`get_feature_names_out` uses it, ``transform`` needs no fit.

    See Also
    --------
    RipsPersistence : Vietoris-Rips persistence of the normalized clouds.

    Notes
    -----
    ``"local"`` rescales by the upper median of the norms, the norm of point
    ``n // 2`` in increasing order (as the authors' code does), not the mean of
    the two middle norms that :func:`numpy.median` takes for an even number of
    points. The median point then has norm exactly 1, and the exterior that
    :class:`RipsPersistence` cones off (norm >= 1) is exactly the points whose
    norm is at least the median, as the paper states. For the presets' even
    batch sizes the two differ by the gap between the two middle norms, which
    is small: on five random 500-digit batches of scikit-learn's digits
    (input layer, centered), the complexity changed by at most 0.08%.

    A constant cloud (largest distance 0 for ``"global"``, median norm 0 for
    ``"local"``) cannot be normalized and raises ``ValueError`` naming the
    sample and layer: it usually means a dead layer.

    Each cloud is first rescaled by a power of two, which is exact, so clouds
    of any magnitude (1e-300 or 1e200) are normalized as their rescaled copies.

    A :class:`~sklandscapes.LayerDistances` cell gives the cell of the
    normalized cloud. Centering uses its ``centered_norms`` (``"global"``, or
    ``"local"`` with centering) and ``center="auto"`` its ``nonnegative``
    flag; a cell without them raises ``ValueError``. Scaling divides the
    distances and the norms. The local projection onto the unit sphere needs
    no coordinates: with ``a = 1/max(1, |x|)`` and ``b = 1/max(1, |y|)``, the
    squared distance of the projected points is
    ``a b |x - y|^2 + (a - b)(a |x|^2 - b |y|^2)``, exactly ``|x - y|^2`` when
    neither point moves. Its rounding error is a few ulps of the largest
    squared norm, so up to ~1e-8 on projected distances near 0 and ~1e-16 on
    those of order 1; the output cell knows its ``norms`` but not its
    ``centered_norms`` (the projection moves the mean).

    References
    ----------
    .. [1] M. Wheeler, J. Bouza, P. Bubenik. "Activation Landscapes as a
       Topological Summary of Neural Network Performance", IEEE Big Data 2021.

    Examples
    --------
    >>> import numpy as np
    >>> from sklandscapes import ActivationNormalizer
    >>> cloud = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 3.0]])
    >>> out = ActivationNormalizer().fit_transform([cloud])
    >>> out.shape
    (1, 1)
    >>> from scipy.spatial.distance import pdist
    >>> float(pdist(out[0, 0]).max())
    1.0
    """

    _parameter_constraints = {
        "method": [StrOptions({"global", "local"})],
        "center": [StrOptions({"auto"}), "boolean", "array-like"],
    }

    def __init__(self, method="global", center="auto"):
        self.method = method
        self.center = center

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Validate the parameters and the clouds; learns nothing.

        Parameters
        ----------
        X : object array of shape (n_samples, n_layers) or sequence of clouds
            Each cell a float array of shape (n_points, n_features).
        y : None
            Ignored.

        Returns
        -------
        self : ActivationNormalizer
        """
        clouds = check_layered_clouds(X, allow_distances=True)
        self._check_center(clouds.shape[1])
        self.n_layers_ = clouds.shape[1]
        return self

    def _check_center(self, n_layers):
        """One centering flag per layer."""
        if isinstance(self.center, str):
            return [self.center] * n_layers
        if np.ndim(self.center) == 0:
            return [bool(self.center)] * n_layers
        flags = list(self.center)
        if len(flags) != n_layers or not all(
            isinstance(flag, (bool, np.bool_)) for flag in flags
        ):
            raise ValueError(
                "center must be 'auto', a bool, or one bool per layer "
                f"({n_layers} layers in X), got {self.center!r}."
            )
        return [bool(flag) for flag in flags]

    def transform(self, X):
        """Normalize each cloud.

        Parameters
        ----------
        X : object array of shape (n_samples, n_layers) or sequence of clouds
            Each cell a float array of shape (n_points, n_features) or a
            :class:`~sklandscapes.LayerDistances`.

        Returns
        -------
        Xt : object array of shape (n_samples, n_layers)
            The normalized clouds, float64, same shapes as the input cells;
            a :class:`~sklandscapes.LayerDistances` cell gives a new one.
        """
        clouds = check_layered_clouds(X, allow_distances=True)
        centers = self._check_center(clouds.shape[1])
        out = np.empty(clouds.shape, dtype=object)
        errors = []
        for index in np.ndindex(*clouds.shape):
            # The result does not depend on the scale of the cloud: rescaling
            # by a power of two first is exact and keeps squared coordinates
            # of 1e200 from overflowing and those of 1e-300 from underflowing.
            cloud = clouds[index]
            if isinstance(cloud, LayerDistances):
                cell, problem = _normalize_distances(
                    cloud, self.method, centers[index[1]]
                )
            elif self.method == "global":
                cloud = np.ldexp(cloud, -binary_exponent(cloud))
                cell, problem = _normalize_global(cloud)
            else:
                cloud = np.ldexp(cloud, -binary_exponent(cloud))
                cell, problem = _normalize_local(cloud, centers[index[1]])
            if problem:
                errors.append(f"{_where(index)}: {problem}")
            out[index] = cell
        _raise_if_errors(
            errors,
            f"clouds for ActivationNormalizer(method={self.method!r})",
            "A constant cloud usually comes from a dead layer (all activations "
            "equal); drop that layer or network.",
        )
        return out

    def get_feature_names_out(self, input_features=None):
        """Names of the layers (the columns of the output), one to one.

        The output keeps the layers of X, so the names are ``input_features``
        when given, else ``layer0``, ``layer1``, ... . ``set_output`` is
        accepted, but the output stays an object array of clouds, which no
        DataFrame can hold; the names serve ``Pipeline.get_feature_names_out``.

        Parameters
        ----------
        input_features : array-like of str, default=None
            Names of the layers of X, one per layer.

        Returns
        -------
        feature_names_out : ndarray of str objects
        """
        if not hasattr(self, "n_layers_"):
            raise NotFittedError(
                "This ActivationNormalizer names the layers of the X seen in fit; "
                "call fit first (transform alone needs no fit)."
            )
        if input_features is None:
            return np.asarray(
                [f"layer{i}" for i in range(self.n_layers_)], dtype=object
            )
        if len(input_features) != self.n_layers_:
            raise ValueError(
                f"input_features has {len(input_features)} names, expected "
                f"{self.n_layers_} (one per layer): {list(input_features)!r}."
            )
        return np.asarray(input_features, dtype=object)


def _normalize_global(cloud):
    centered = cloud - cloud.mean(axis=0)
    diameter = max_pairwise_distance(centered)
    if diameter == 0:
        return None, "constant cloud: its largest pairwise distance is 0"
    return centered / diameter, None


def _normalize_local(cloud, center):
    if (cloud == cloud[0]).all():
        return None, "constant cloud: all its points are equal"
    if center is True or (center == "auto" and (cloud < 0).any()):
        cloud = cloud - cloud.mean(axis=0)
    norms = np.linalg.norm(cloud, axis=1)
    median, problem = _upper_median(norms)
    if problem:
        return None, problem
    scaled = cloud / median
    norms = norms / median
    outside = norms > 1
    scaled[outside] /= norms[outside, None]
    return scaled, None


def _normalize_distances(cell, method, center):
    """The :class:`LayerDistances` of the normalized cloud (see the Notes)."""
    exponent = max(
        binary_exponent(values)
        for values in (cell.distances, cell.norms, cell.centered_norms)
        if values is not None
    )
    distances = np.ldexp(cell.distances, -exponent)
    if distances.max() == 0:
        if method == "global":
            return None, "constant cloud: its largest pairwise distance is 0"
        return None, "constant cloud: all its points are equal"
    if method == "global":
        center = True
    elif center == "auto":
        if cell.nonnegative is None:
            return None, (
                "center='auto' needs to know whether every coordinate is >= 0, "
                "which this LayerDistances does not say (nonnegative=None); pass "
                "center as a bool per layer"
            )
        center = not cell.nonnegative
    if center and cell.centered_norms is None:
        return None, (
            "centering needs the distances of the points to their mean, which "
            "this LayerDistances does not have (centered_norms=None, as after "
            "a local normalization); pass center=False or the unnormalized cells"
        )
    norms = np.ldexp(cell.centered_norms if center else cell.norms, -exponent)
    # Centered and not constant: some coordinate is negative.
    nonnegative = False if center else cell.nonnegative
    if method == "global":
        diameter = distances.max()
        centered = norms / diameter
        return LayerDistances(distances / diameter, centered, centered, False), None
    median, problem = _upper_median(norms)
    if problem:
        return None, problem
    norms = norms / median
    distances = distances / median
    inverse = 1 / np.maximum(norms, 1.0)
    a, b = inverse[:, None], inverse[None, :]
    squared = a * b * distances**2 + (a - b) * (
        a * norms[:, None] ** 2 - b * norms[None, :] ** 2
    )
    moved = norms > 1
    # Pairs where neither point moves keep their distance, bit for bit.
    projected = np.where(
        moved[:, None] | moved[None, :], np.sqrt(np.maximum(squared, 0.0)), distances
    )
    # The formula is symmetric in exact arithmetic only; keep one triangle.
    lower = np.tril_indices(len(norms), -1)
    projected[lower] = projected.T[lower]
    np.fill_diagonal(projected, 0.0)
    return LayerDistances(projected, np.minimum(norms, 1.0), None, nonnegative), None


def _upper_median(norms):
    """The upper median of the norms (see the class's Notes), or a problem."""
    median = np.partition(norms, len(norms) // 2)[len(norms) // 2]
    if median == 0:
        return None, (
            "median norm is 0 (at least half of the points sit at the origin), "
            "so the cloud cannot be rescaled to median norm 1"
        )
    return median, None
