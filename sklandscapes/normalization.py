"""Normalization of activation clouds before persistent homology (paper II-D)."""

import numpy as np
from scipy.spatial.distance import cdist, pdist
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import NotFittedError

from sklandscapes._base import StatelessTransformerMixin
from sklandscapes._compat import StrOptions, _fit_context
from sklandscapes._validation import _raise_if_errors, _where, check_layered_clouds

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
    only validates the parameters.

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
    center : {"auto", True, False}, default="auto"
        Used by ``method="local"`` only (``"global"`` always centers).
        ``"auto"`` centers unless every coordinate of the cloud is >= 0, which is
        the case of a layer that ends with a ReLU: the paper leaves such layers
        uncentered so that the origin keeps its meaning.

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
    A constant cloud (largest distance 0 for ``"global"``, median norm 0 for
    ``"local"``) cannot be normalized and raises ``ValueError`` naming the
    sample and layer: it usually means a dead layer.

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
        "center": [StrOptions({"auto"}), "boolean"],
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
        self.n_layers_ = check_layered_clouds(X).shape[1]
        return self

    def transform(self, X):
        """Normalize each cloud.

        Parameters
        ----------
        X : object array of shape (n_samples, n_layers) or sequence of clouds

        Returns
        -------
        Xt : object array of shape (n_samples, n_layers)
            The normalized clouds, float64, same shapes as the input cells.
        """
        clouds = check_layered_clouds(X)
        normalize = _normalize_global if self.method == "global" else self._local
        out = np.empty(clouds.shape, dtype=object)
        errors = []
        for index in np.ndindex(*clouds.shape):
            cell, problem = normalize(clouds[index])
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

    def _local(self, cloud):
        return _normalize_local(cloud, self.center)

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
    median = np.median(norms)
    if median == 0:
        return None, (
            "median norm is 0 (at least half of the points sit at the origin), "
            "so the cloud cannot be rescaled to median norm 1"
        )
    scaled = cloud / median
    norms = norms / median
    outside = norms > 1
    scaled[outside] /= norms[outside, None]
    return scaled, None
