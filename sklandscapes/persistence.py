"""Vietoris-Rips persistence of layered clouds, global or local (paper II-A, II-B)."""

import numbers

import numpy as np
from gudhi import RipsComplex as _GudhiRipsComplex
from gudhi.random import set_seed as _set_gudhi_seed
from gudhi.sklearn import RipsPersistence as _GudhiRips
from joblib import effective_n_jobs, parallel_config
from scipy.sparse import coo_matrix
from scipy.spatial import cKDTree
from scipy.spatial.distance import pdist, squareform
from sklearn import config_context
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_random_state
from tqdm.auto import tqdm

from sklandscapes import _validation
from sklandscapes._base import StatelessTransformerMixin
from sklandscapes._compat import Interval, Parallel, StrOptions, _fit_context, delayed
from sklandscapes._distances import LayerDistances
from sklandscapes._validation import (
    _raise_if_errors,
    _where,
    binary_exponent,
    check_layered_clouds,
    format_bytes,
)

__all__ = ["RipsPersistence"]

_METRICS = {
    "euclidean",
    "sqeuclidean",
    "cityblock",
    "chebyshev",
    "cosine",
    "correlation",
    "minkowski",
    "precomputed",
}

# The local normalizer projects exterior points onto the unit sphere; the norm of
# a projected point is 1 only up to rounding (it can come out as 1 - 1e-16), so
# "norm >= radius" is tested with this relative slack.
_RADIUS_RTOL = 1e-9

# Metrics under which scipy gives a point exactly 0 from itself (differences
# of equal coordinates), so a repeated point can be dropped (see
# _without_repeats); cosine and correlation can give 1e-16.
_SELF_DISTANCE_ZERO_METRICS = frozenset(
    {"euclidean", "sqeuclidean", "cityblock", "chebyshev", "minkowski"}
)

# GUDHI computes with coefficients in 16 bits: 65537 raises OverflowError, and
# the largest prime it takes is 65521.
_MAX_COEFF = 65521

# Metrics for which sparse Rips can take point clouds or a distance matrix
# without building one: its guarantee needs the triangle inequality, which
# sqeuclidean, cosine and correlation dissimilarities violate.
_APPROXIMATION_METRICS = ("euclidean", "precomputed")

# Relative margin of the k-d tree's search radius on the sparse path: its own
# rounding of a length can exceed scipy's by an ulp or so. The pairs it finds
# are then measured with pdist's arithmetic and kept when <= max_edge_length.
_THRESHOLD_SLACK = 1e-9

# Peak memory of exact Rips, fitted to benchmarks/bench_memory.py's runs
# (benchmarks/results/bench_memory.txt). The dense path grows as n^2: our
# distance matrices, Ripser's compressed copy, its sorted edges and its
# columns to reduce.
_DENSE_BYTES_PER_SQUARED_POINT = 56
_DENSE_BYTES_OVERHEAD = 64 * 2**20
# The sparse path (finite max_edge_length) peaks per edge kept, mostly in
# Ripser's sparse matrix and columns, which depend on the data: clouds with
# many tied distances (binary activations) take several times more than the
# standard normal clouds the guard is fitted to. The per-feature term is a
# margin that grows with the width of the layers, where such clouds come from.
_SPARSE_BYTES_PER_EDGE_PER_FEATURE = 24
_SPARSE_BYTES_PER_EDGE = 140
# The k-d tree, the points' copies and Ripser's per-vertex arrays.
_SPARSE_BYTES_PER_POINT = 1024
# Headroom over the measured peaks: the number of columns Ripser keeps varies
# from cloud to cloud.
_MEMORY_SAFETY = 1.25


def _dense_rips_bytes(n_points):
    """Upper estimate of the peak bytes of exact Rips on a full distance matrix."""
    return _MEMORY_SAFETY * (
        _DENSE_BYTES_PER_SQUARED_POINT * n_points**2 + _DENSE_BYTES_OVERHEAD
    )


def _sparse_rips_bytes(n_points, n_edges, n_features):
    """Upper estimate of the peak bytes of exact Rips on the edges kept."""
    per_edge = max(
        _SPARSE_BYTES_PER_EDGE_PER_FEATURE * n_features + 16, _SPARSE_BYTES_PER_EDGE
    )
    return _MEMORY_SAFETY * (per_edge * n_edges + _SPARSE_BYTES_PER_POINT * n_points)


def _count_edges(cloud, max_edge_length):
    """Number of pairs of points at distance <= max_edge_length, none built."""
    exponent = binary_exponent(cloud)
    tree = cKDTree(np.ldexp(cloud, -exponent))
    radius = np.ldexp(max_edge_length, -exponent) * (1 + _THRESHOLD_SLACK)
    # count_neighbors counts ordered pairs, each point with itself included.
    return int((tree.count_neighbors(tree, radius) - len(cloud)) // 2)


def _is_prime(p):
    return p >= 2 and all(p % q for q in range(2, int(p**0.5) + 1))


class RipsPersistence(StatelessTransformerMixin, TransformerMixin, BaseEstimator):
    """Vietoris-Rips persistence diagrams of every (sample, layer) cloud.

    Stateless: ``fit`` validates the parameters. Diagrams are computed with
    GUDHI's Ripser-based Rips persistence over the full filtration (no edge
    collapse: on activation clouds it is slower), with coefficients in Z/``coeff``.

    Parameters
    ----------
    homology_dimensions : sequence of int, default=(1,)
        Homology dimensions to return, in this order. A single int is read as a
        sequence of one: the output keeps an axis of length 1 either way.
    local : bool, default=False
        Local homology (paper II-B, II-D local step 2): before the filtration,
        the distance between two points whose norms are both ``>= radius`` is set
        to 0, so the exterior of the ball of that radius is coned off. Use it
        after ``ActivationNormalizer(method="local")``, for which ``radius=1``
        is the median norm.
    radius : float, default=1.0
        Radius of the ball for ``local=True``.
    max_edge_length : float, default=np.inf
        Largest edge of the Rips complex: an edge of exactly this length is
        kept, on every path. Classes alive at this scale get death ``inf``.
        A finite value with the Euclidean metric and ``local=False`` builds
        a sparse complex and never forms the dense distance matrix; its edges
        and their lengths are those of the dense path, bit for bit.
    metric : str, default="euclidean"
        A metric of :func:`scipy.spatial.distance.pdist`, or ``"precomputed"``
        for distances instead of clouds: square distance matrices, or
        :class:`~sklandscapes.LayerDistances` cells (from
        ``ActivationExtractor(output="distances")``), which also carry the
        norms of the points that ``local=True`` needs.
    coeff : int, default=2
        Prime characteristic of the coefficient field. The paper uses Z/2.
        GUDHI takes primes up to 65521 (its coefficients are 16-bit).
    n_jobs : int, default=None
        Number of jobs to run in parallel. ``None`` means 1 unless in a
        :obj:`joblib.parallel_backend` context. ``-1`` means using all
        processors. Work is spread over every (sample, layer) cloud, in even
        chunks, on threads (GUDHI releases the GIL). Results do not depend on it.
    verbose : int, default=0
        Show a progress bar over clouds when > 0.
    approximation : float, default=None
        ``None`` computes the exact diagrams. A value ``eps`` in (0, 1) computes
        them on GUDHI's sparse Rips filtration (Sheehy's, as corrected by
        Cavanna, Jahanseir and Sheehy), whose size is linear in the number of
        points, so that clouds far beyond the dense path's memory fit; see
        Notes for the guarantee. Needs ``metric="euclidean"`` (point clouds)
        or ``"precomputed"`` (a distance matrix that is a metric), and
        ``local=False``.
    random_state : int, RandomState instance or None, default=None
        Used only with ``approximation``: seeds the starting point of the
        greedy (farthest-point) ordering that sparse Rips builds on each
        cloud, so that the approximate diagrams are reproducible. One seed per
        cloud is drawn before the work is dispatched, so results do not depend
        on ``n_jobs``. Pass an int for reproducible output across calls.

    See Also
    --------
    ActivationNormalizer : Normalization applied before this step.
    LandscapeVectorizer : Turns the diagrams into landscape vectors.

    Notes
    -----
    The output is an object array of shape
    ``(n_samples, n_layers, n_homology_dimensions)`` whose cells are float
    arrays of shape ``(n_pairs, 2)`` of (birth, death), rows sorted by birth
    then death. Pairs of zero length are dropped; essential classes (H0's
    component, or any class alive at ``max_edge_length``) have death ``inf``.

    A point repeated in a cloud goes to Rips once (exact diagrams use clouds
    without repeats under the metrics for which scipy gives a point exactly 0
    from itself: all but ``"cosine"``, ``"correlation"`` and ``"precomputed"``).
    The diagrams are the same: the copy is dominated by its original at every
    scale, and its own H0 pair, ``(0, 0)``, has zero length. ReLU layers repeat
    many points.

    Memory: exact Rips on ``n`` points (``max_edge_length=inf``) peaks at about
    ``54 n^2`` bytes (7.2 GiB for 12,000 points: our distance matrix, Ripser's
    copy, its sorted edges and columns; measured in
    ``benchmarks/bench_memory.py``), and with a finite
    ``max_edge_length`` (Euclidean, not local) the guard assumes
    ``max(24 d + 16, 140)`` bytes per edge kept in R^d (117-138 measured on
    Gaussian clouds). Ripser's memory depends on the data as well: clouds
    with many tied distances (binary or quantized activations) can take
    several times that, on either path, and pass the guard. A cloud whose
    estimate (with a 25% margin) exceeds the memory available raises
    ``ValueError`` before anything is allocated, and points to
    ``approximation``.

    Approximation guarantee: with ``approximation=eps`` (``0 < eps < 1``) and
    ``max_edge_length=inf``, the sparse filtration is multiplicatively
    ``(1, 1 / (1 - eps))``-interleaved with the Rips filtration (GUDHI's
    documentation, after Cavanna, Jahanseir and Sheehy [3]_), in every
    homology dimension. Hence, on the log scale (each pair ``(b, d)`` read as
    ``(log b, log d)``), the bottleneck distance between the approximate and
    the exact diagram is at most ``log(1 / (1 - eps))``: every pair is matched
    to a pair whose birth and death are each within a factor ``1 / (1 - eps)``
    of its own, or is within ``log(1 / (1 - eps))`` of the diagonal
    (``d / b <= (1 - eps)^-2``) and unmatched. H0's births are all 0, so for
    H0 the statement is on the deaths alone. Filtration values of the sparse
    complex are never below the exact ones. With a finite
    ``max_edge_length`` the approximated filtration is the truncated one and
    the bound holds only below ``(1 - eps) * max_edge_length``. GUDHI gives no
    guarantee for ``eps >= 1``, so it is refused.

    Clouds are rescaled by a power of two before their distances are taken,
    which is exact, so coordinates of any magnitude (1e-300 or 1e200) give the
    diagrams of the rescaled cloud scaled back, with no overflow or
    underflow. A distance that is still not finite (``metric="cosine"`` with a
    zero row, ``"correlation"`` with a constant row) raises ``ValueError``
    naming the sample, the layer and the metric.

    References
    ----------
    .. [1] U. Bauer. "Ripser: efficient computation of Vietoris-Rips
       persistence barcodes", J. Appl. Comput. Topol. 5, 2021.
    .. [2] M. Wheeler, J. Bouza, P. Bubenik. "Activation Landscapes as a
       Topological Summary of Neural Network Performance", IEEE Big Data 2021.
    .. [3] N. J. Cavanna, M. Jahanseir, D. R. Sheehy. "A geometric perspective
       on sparse filtrations", CCCG 2015.

    Examples
    --------
    >>> import numpy as np
    >>> from sklandscapes import RipsPersistence
    >>> angles = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    >>> circle = np.c_[np.cos(angles), np.sin(angles)]
    >>> diagrams = RipsPersistence().fit_transform([circle])
    >>> diagrams.shape
    (1, 1, 1)
    >>> np.round(diagrams[0, 0, 0], 4)
    array([[0.5176, 1.7321]])

    The sparse approximation (here exact on so few points):

    >>> approximate = RipsPersistence(approximation=0.5, random_state=0)
    >>> np.round(approximate.fit_transform([circle])[0, 0, 0], 4)
    array([[0.5176, 1.7321]])
    """

    _parameter_constraints = {
        "homology_dimensions": [
            Interval(numbers.Integral, 0, None, closed="left"),
            "array-like",
        ],
        "local": ["boolean"],
        "radius": [Interval(numbers.Real, 0, None, closed="neither")],
        "max_edge_length": [Interval(numbers.Real, 0, None, closed="right")],
        "metric": [StrOptions(_METRICS)],
        "coeff": [Interval(numbers.Integral, 2, _MAX_COEFF, closed="both")],
        "n_jobs": [
            Interval(numbers.Integral, None, -1, closed="right"),
            Interval(numbers.Integral, 1, None, closed="left"),
            None,
        ],
        "verbose": ["verbose"],
        "approximation": [Interval(numbers.Real, 0, 1, closed="neither"), None],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        homology_dimensions=(1,),
        local=False,
        radius=1.0,
        max_edge_length=np.inf,
        metric="euclidean",
        coeff=2,
        n_jobs=None,
        verbose=0,
        approximation=None,
        random_state=None,
    ):
        self.homology_dimensions = homology_dimensions
        self.local = local
        self.radius = radius
        self.max_edge_length = max_edge_length
        self.metric = metric
        self.coeff = coeff
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.approximation = approximation
        self.random_state = random_state

    def _check_params(self):
        """Cross-parameter checks; returns the homology dimensions as a tuple."""
        dims = _validation.check_homology_dimensions(self.homology_dimensions)
        if isinstance(self.coeff, bool) or not _is_prime(self.coeff):
            raise ValueError(f"coeff must be a prime number, got {self.coeff!r}.")
        if self.approximation is not None:
            if self.local:
                raise ValueError(
                    "approximation needs local=False: local homology sets the "
                    "distances between exterior points to 0, which breaks the "
                    "triangle inequality that sparse Rips and its guarantee rely "
                    "on (and makes it drop all but one exterior point). Use the "
                    "exact path (approximation=None) for local homology."
                )
            if self.metric not in _APPROXIMATION_METRICS:
                raise ValueError(
                    "approximation needs metric='euclidean' (point clouds) or "
                    "metric='precomputed' (a distance matrix that is a metric), got "
                    f"metric={self.metric!r}: sparse Rips's guarantee needs the "
                    "triangle inequality, which 'sqeuclidean', 'cosine' and "
                    "'correlation' violate. For 'cityblock', 'chebyshev' or "
                    "'minkowski', pass squareform(pdist(cloud, metric)) with "
                    "metric='precomputed'."
                )
        return tuple(int(d) for d in dims)

    def _check_clouds(self, X):
        """The validated cells; with local=True, every one must carry norms."""
        precomputed = self.metric == "precomputed"
        clouds = check_layered_clouds(
            X, precomputed=precomputed, allow_distances=precomputed
        )
        if self.local and precomputed:
            errors = [
                f"{_where(index)}: a plain distance matrix"
                for index in np.ndindex(*clouds.shape)
                if not isinstance(clouds[index], LayerDistances)
            ]
            _raise_if_errors(
                errors,
                "cells for RipsPersistence(local=True, metric='precomputed'): no norms",
                "local=True needs the norms of the points, which a distance "
                "matrix alone does not give: pass LayerDistances cells (e.g. from "
                "ActivationExtractor(output='distances')), or point clouds with "
                "metric='euclidean'.",
            )
        return clouds

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Validate the parameters and the clouds; learns nothing.

        Parameters
        ----------
        X : object array of shape (n_samples, n_layers) or sequence of clouds
            Point clouds ``(n_points, n_features)``, or with
            ``metric="precomputed"`` square distance matrices or
            :class:`~sklandscapes.LayerDistances` cells.
        y : None
            Ignored.

        Returns
        -------
        self : RipsPersistence
        """
        self._check_params()
        self._check_clouds(X)
        return self

    def transform(self, X):
        """Compute the persistence diagrams of every cloud.

        Parameters
        ----------
        X : object array of shape (n_samples, n_layers) or sequence of clouds

        Returns
        -------
        diagrams : object array of shape (n_samples, n_layers, n_homology_dimensions)
            Cells are float arrays of shape (n_pairs, 2).
        """
        dims = self._check_params()
        clouds = self._check_clouds(X)
        self._check_memory(clouds)
        cells = list(clouds.ravel())
        # Drawn here, one per cloud, so the diagrams do not depend on n_jobs;
        # GUDHI's generator is thread-local and takes a C int.
        seeds = check_random_state(self.random_state).randint(
            np.iinfo(np.int32).max, size=len(cells)
        )
        n_jobs = effective_n_jobs(self.n_jobs)
        # A few chunks per worker balance uneven clouds without paying the
        # dispatch cost of one task per cloud.
        n_chunks = min(len(cells), 16 * n_jobs)
        bounds = np.linspace(0, len(cells), n_chunks + 1).astype(int)
        chunks = [(cells[a:b], seeds[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
        settings = dict(
            dims=dims,
            local=self.local,
            radius=self.radius,
            max_edge_length=float(self.max_edge_length),
            metric=self.metric,
            coeff=self.coeff,
            approximation=self.approximation,
        )
        results = Parallel(n_jobs=self.n_jobs, prefer="threads", return_as="generator")(
            delayed(_diagrams_of_chunk)(chunk, chunk_seeds, **settings)
            for chunk, chunk_seeds in chunks
        )
        out = np.empty(clouds.shape + (len(dims),), dtype=object)
        flat = out.reshape(-1, len(dims))
        with tqdm(
            total=len(cells),
            disable=not self.verbose,
            desc="Rips persistence",
            unit="cloud",
        ) as bar:
            position = 0
            errors = []
            for chunk_result in results:
                for diagrams in chunk_result:
                    if isinstance(diagrams, str):
                        index = np.unravel_index(position, clouds.shape)
                        errors.append(f"{_where(index)}: {diagrams}")
                    else:
                        for k, diagram in enumerate(diagrams):
                            flat[position, k] = diagram
                    position += 1
                bar.update(len(chunk_result))
        _raise_if_errors(
            errors,
            f"distances for RipsPersistence(metric={self.metric!r})",
            "Cosine distances need rows that are not all zero and correlation "
            "distances rows that are not constant (and at least 2 features); "
            "drop such points or use metric='euclidean'.",
        )
        return out

    def _check_memory(self, clouds):
        """Refuse, before allocating, a cloud whose exact Rips would not fit.

        Sparse Rips (``approximation``) is linear in the points and not checked.
        """
        available = _validation._available_memory()
        if self.approximation is not None or available is None:
            return
        sparse = (
            np.isfinite(self.max_edge_length)
            and self.metric == "euclidean"
            and not self.local
        )
        errors = []
        for index in np.ndindex(*clouds.shape):
            cloud = clouds[index]
            n = len(cloud)
            if sparse:
                needed = _sparse_rips_bytes(n, n * (n - 1) // 2, cloud.shape[1])
                if needed > available:
                    # Only the edges kept count: count them without building them.
                    n_edges = _count_edges(cloud, self.max_edge_length)
                    needed = _sparse_rips_bytes(n, n_edges, cloud.shape[1])
                    what = f"exact Rips on its {n_edges} edges <= max_edge_length"
            else:
                needed = _dense_rips_bytes(n)
                what = "exact Rips on the full distance matrix"
            if needed > available:
                errors.append(
                    f"{_where(index)}: {n} points need about "
                    f"{format_bytes(needed)} for {what}, "
                    f"{format_bytes(available)} available"
                )
        _raise_if_errors(
            errors,
            "clouds for RipsPersistence: too large for exact Rips in memory",
            "Pass approximation=eps with 0 < eps < 1 (sparse Rips: memory linear "
            "in the points, each diagram within log(1 / (1 - eps)) of the exact "
            "one in log-scale bottleneck distance; a larger eps is faster), "
            "subsample the clouds, or pass a smaller max_edge_length.",
        )

    def get_feature_names_out(self, input_features=None):
        """Names of the homology dimensions of the last axis, e.g. ``["H1"]``."""
        return np.asarray([f"H{d}" for d in self._check_params()], dtype=object)


def _diagrams_of_chunk(chunk, seeds, **settings):
    return [
        _diagrams_of_cloud(cell, seed=seed, **settings)
        for cell, seed in zip(chunk, seeds)
    ]


def _diagrams_of_cloud(
    cell,
    *,
    dims,
    local,
    radius,
    max_edge_length,
    metric,
    coeff,
    approximation=None,
    seed=0,
):
    """The diagrams of one cloud, one (n_pairs, 2) array per homology dimension.

    Returns a message instead when a distance is not finite.
    """
    norms = None
    if isinstance(cell, LayerDistances):
        cell, norms = cell.distances, cell.norms
    elif approximation is None and metric in _SELF_DISTANCE_ZERO_METRICS:
        cell = _without_repeats(cell)
    # Distances are taken on the cloud scaled by 2**-exponent, which is exact
    # and keeps squared coordinates far from overflow and underflow; the
    # filtration values are scaled back at the end. Cosine and correlation
    # distances do not scale, and squared Euclidean ones scale twice.
    exponent = binary_exponent(cell)
    degree = {"cosine": 0, "correlation": 0, "sqeuclidean": 2}.get(metric, 1)
    cell = np.ldexp(cell, -exponent)
    threshold = np.ldexp(max_edge_length, -degree * exponent)
    if approximation is not None:
        diagrams = _sparse_rips_diagrams(
            cell, dims, threshold, metric, coeff, approximation, seed
        )
        return [np.ldexp(diagram, exponent) for diagram in diagrams]
    sparse = metric == "euclidean" and not local and np.isfinite(max_edge_length)
    if sparse:
        data, input_type = _edges_within(cell, threshold), "distance coo_matrix"
    else:
        data = cell if metric == "precomputed" else squareform(pdist(cell, metric))
        input_type = "full distance matrix"
        if not np.isfinite(data).all():
            n_bad = int((~np.isfinite(data)).sum() // 2)
            return f"{n_bad} distance(s) under metric={metric!r} are NaN or infinite"
        if local:
            # Given norms are of the unscaled cloud, so they meet the radius
            # as given.
            scale = 0 if norms is not None else exponent
            if norms is None:
                norms = np.linalg.norm(cell, axis=1)
            outside = np.flatnonzero(
                norms >= np.ldexp(radius, -scale) * (1 - _RADIUS_RTOL)
            )
            data[np.ix_(outside, outside)] = 0.0
    rips = _GudhiRips(
        homology_dimensions=list(dims),
        threshold=threshold,
        input_type=input_type,
        num_collapses=0,
        homology_coeff_field=coeff,
    )
    # One cloud, so no parallelism inside. gudhi still calls joblib, which would
    # send that call to the backend running this one: with the Dask backend the
    # nested graph fails on the scheduler and the outer job waits forever.
    # gudhi's transformer also follows sklearn's global transform_output, and
    # a DataFrame of diagrams cannot be indexed by position: ask for a list.
    with (
        parallel_config(backend="sequential"),
        config_context(transform_output="default"),
    ):
        diagrams = rips.fit_transform([data])[0]
    diagrams = [_clean(diagram) for diagram in diagrams]
    return [np.ldexp(diagram, degree * exponent) for diagram in diagrams]


def _edges_within(cloud, threshold):
    """The edges of length <= threshold, as a COO matrix of their lengths.

    GUDHI's own sparse path measures edges with ``np.linalg.norm``, which from
    8 features on can differ from scipy's ``pdist`` (the dense path) in the
    last bit, and keep or drop an edge of exactly ``threshold`` differently.
    Here a k-d tree finds the pairs, with a hair more radius, and their lengths
    are pdist's own arithmetic (see :func:`_euclidean_lengths`): the complex is
    the dense path's, edge for edge and bit for bit.
    """
    pairs = cKDTree(cloud).query_pairs(
        threshold * (1 + _THRESHOLD_SLACK), output_type="ndarray"
    )
    lengths = _euclidean_lengths(cloud, pairs[:, 0], pairs[:, 1])
    keep = lengths <= threshold
    n = len(cloud)
    return coo_matrix((lengths[keep], (pairs[keep, 0], pairs[keep, 1])), shape=(n, n))


def _euclidean_lengths(cloud, first, second):
    """Euclidean lengths of the edges (first[i], second[i]), as pdist computes
    them: squared differences summed feature by feature, in order, then the
    square root (a test checks them against pdist). Memory is a few arrays of
    one value per edge, whatever the number of features.
    """
    squares = np.zeros(len(first))
    for feature in cloud.T:
        difference = feature[first] - feature[second]
        squares += difference * difference
    return np.sqrt(squares)


def _sparse_rips_diagrams(cell, dims, threshold, metric, coeff, epsilon, seed):
    """Diagrams of GUDHI's sparse Rips filtration of one (rescaled) cloud."""
    data = {"distance_matrix" if metric == "precomputed" else "points": cell}
    # The greedy ordering starts at a random point drawn from GUDHI's
    # thread-local generator, in the constructor: seeding it in this thread
    # just before makes the diagrams reproducible without a lock.
    _set_gudhi_seed(int(seed))
    complex_ = _GudhiRipsComplex(max_edge_length=threshold, sparse=epsilon, **data)
    # H_k needs the (k + 1)-simplices. When the complex has none (no triangle
    # below max_edge_length, or a single vertex), H_k is its top dimension,
    # which GUDHI reports only with persistence_dim_max=True; asking for it
    # otherwise would reduce the top dimension for nothing (5 x the memory).
    tree = complex_.create_simplex_tree(max_dimension=max(dims) + 1)
    tree.compute_persistence(
        homology_coeff_field=coeff,
        persistence_dim_max=tree.dimension() <= max(dims),
    )
    return [_clean(tree.persistence_intervals_in_dimension(d)) for d in dims]


def _without_repeats(cloud):
    """The cloud with each repeated point kept once, in order of first occurrence.

    A repeated point changes no diagram: its copy is at distance exactly 0 and
    at the same distance from every other point, so at every scale the copy is
    dominated by the original (same closed neighbourhood) and removing it is a
    homotopy equivalence that commutes with the inclusions. Its only trace is
    an H0 pair (0, 0), which has zero length and is dropped anyway. ReLU
    layers map whole regions of inputs to one point (dropping the repeats
    saves about 5% of the Rips work of the paper's synthetic preset).
    """
    cloud = np.ascontiguousarray(cloud)
    # Rows compared as bytes: -0.0 and 0.0 stay apart, which only keeps a
    # repeat that could have gone.
    rows = cloud.view(np.dtype((np.void, cloud.dtype.itemsize * cloud.shape[1])))
    _, first = np.unique(rows[:, 0], return_index=True)
    if len(first) == len(cloud):
        return cloud
    return cloud[np.sort(first)]


def _clean(diagram):
    """Drop zero-length pairs and sort rows by (birth, death)."""
    diagram = np.asarray(diagram, dtype=np.float64).reshape(-1, 2)
    diagram = diagram[diagram[:, 1] > diagram[:, 0]]
    return diagram[np.lexsort((diagram[:, 1], diagram[:, 0]))]
