"""Property-based fuzz of every public estimator (issue 10).

Valid inputs are checked against an independent reference: ripser.py for Rips
diagrams, and brute-force NumPy written from the definitions for
normalization, landscapes, kernels and the permutation test. Invalid inputs
must raise ``ValueError`` or ``TypeError`` whose message names the parameter
or the cell.

Coordinates are drawn on a dyadic lattice (multiples of 1/8 or 1/16) and
scaled by powers of two: distinct filtration values then differ by far more
than float32 rounding (ripser.py computes in float32), and the rescaled inputs
must give results scaled exactly, which is what the fixes of issue 10 promise.
"""

import warnings
from itertools import combinations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.spatial.distance import pdist, squareform

from sklandscapes import (
    ActivationNormalizer,
    LandscapeKernel,
    LandscapeVectorizer,
    PermutationTest,
    RipsPersistence,
)
from sklandscapes.exceptions import NoHiddenLayerWarning

ripser = pytest.importorskip("ripser")

FUZZ = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# Power-of-two scales that overflow (2**600 squared) or underflow (2**-600
# squared) unless the estimators rescale first.
scales = st.sampled_from([0, 600, -600, 1000, -1000])


@st.composite
def lattice_clouds(draw, min_points=3, max_points=9, max_features=3):
    n_points = draw(st.integers(min_points, max_points))
    n_features = draw(st.integers(1, max_features))
    ticks = draw(
        hnp.arrays(np.int64, (n_points, n_features), elements=st.integers(-8, 8))
    )
    return ticks / 8.0


@st.composite
def diagrams(draw, max_pairs=6):
    n_pairs = draw(st.integers(0, max_pairs))
    births = draw(hnp.arrays(np.int64, n_pairs, elements=st.integers(0, 15))) / 16
    lengths = draw(hnp.arrays(np.int64, n_pairs, elements=st.integers(1, 16))) / 16
    deaths = births + lengths
    essential = draw(hnp.arrays(np.bool_, n_pairs))
    deaths[essential] = np.inf
    return np.c_[births, deaths].reshape(-1, 2)


def finite_pairs(diagram):
    diagram = diagram[np.isfinite(diagram[:, 1]) & (diagram[:, 1] > diagram[:, 0])]
    return diagram[np.lexsort((diagram[:, 1], diagram[:, 0]))]


def ripser_diagrams(cloud, metric, maxdim):
    distances = squareform(pdist(cloud, metric))
    return ripser.ripser(distances, distance_matrix=True, maxdim=maxdim)["dgms"]


# ---------------------------------------------------------------- valid inputs


@FUZZ
@given(
    cloud=lattice_clouds(),
    metric=st.sampled_from(["euclidean", "cityblock", "chebyshev"]),
    exponent=scales,
)
def test_rips_matches_ripser_at_every_scale(cloud, metric, exponent):
    rips = RipsPersistence(homology_dimensions=(0, 1), metric=metric)
    ours = rips.fit_transform([cloud])[0, 0]
    reference = ripser_diagrams(cloud, metric, maxdim=1)
    for got, expected in zip(ours, reference):
        expected = finite_pairs(expected)
        got_finite = finite_pairs(got)
        assert got_finite.shape == expected.shape
        # ripser.py rounds to float32 (relative 6e-8) on distances <= 6.
        np.testing.assert_allclose(got_finite, expected, atol=1e-6)
    assert np.isinf(ours[0][:, 1]).sum() == 1
    scaled = rips.fit_transform([np.ldexp(cloud, exponent)])[0, 0]
    for got, plain in zip(scaled, ours):
        np.testing.assert_array_equal(got, np.ldexp(plain, exponent))


@FUZZ
@given(cloud=lattice_clouds(min_points=4), rank=st.integers(0, 5), data=st.data())
def test_max_edge_length_is_inclusive_on_every_path(cloud, rank, data):
    lengths = np.unique(pdist(cloud))
    assume(len(lengths) > 0 and lengths[-1] > 0)
    length = float(lengths[lengths > 0][min(rank, (lengths > 0).sum() - 1)])
    sparse, dense = (
        RipsPersistence(
            homology_dimensions=(0, 1), max_edge_length=length, metric=metric
        ).fit_transform([cloud])[0, 0]
        for metric in ("euclidean", "minkowski")
    )
    for ours, theirs in zip(sparse, dense):
        np.testing.assert_array_equal(ours, theirs)
    # The complex of edges <= length: the full diagram cut there (a class born
    # after it does not exist, one alive at it is essential).
    for got, full in zip(sparse, ripser_diagrams(cloud, "euclidean", maxdim=1)):
        full = full[full[:, 1] > full[:, 0]]
        # Distinct lattice distances differ by far more than 1e-6 relative.
        kept = full[full[:, 0] <= length * (1 + 1e-6)]
        kept[kept[:, 1] > length * (1 + 1e-6), 1] = np.inf
        assert np.isinf(got[:, 1]).sum() == np.isinf(kept[:, 1]).sum()
        np.testing.assert_allclose(finite_pairs(got), finite_pairs(kept), atol=1e-6)


def brute_global(cloud):
    centered = cloud - cloud.mean(axis=0)
    differences = centered[:, None, :] - centered[None, :, :]
    return centered / np.sqrt((differences**2).sum(axis=2)).max()


def brute_local(cloud, center):
    if center is True or (center == "auto" and (cloud < 0).any()):
        cloud = cloud - cloud.mean(axis=0)
    norms = np.sqrt((cloud**2).sum(axis=1))
    # The upper median: the norm ranked n // 2 (see ActivationNormalizer).
    median = sorted(norms)[len(norms) // 2]
    scaled = cloud / median
    for i, norm in enumerate(norms / median):
        if norm > 1:
            scaled[i] = scaled[i] / norm
    return scaled


@FUZZ
@given(
    cloud=lattice_clouds(min_points=2),
    method=st.sampled_from(["global", "local"]),
    center=st.sampled_from(["auto", True, False]),
    exponent=scales,
)
def test_normalizer_matches_brute_force_at_every_scale(cloud, method, center, exponent):
    normalizer = ActivationNormalizer(method=method, center=center)
    constant = (cloud == cloud[0]).all()
    if method == "global":
        if constant:
            with pytest.raises(ValueError, match="sample 0, layer 0: constant cloud"):
                normalizer.fit_transform([cloud])
            return
        expected = brute_global(cloud)
    else:
        centered = center is True or (center == "auto" and (cloud < 0).any())
        norms = np.linalg.norm(cloud - cloud.mean(0) if centered else cloud, axis=1)
        if constant or sorted(norms)[len(norms) // 2] == 0:
            with pytest.raises(ValueError, match="sample 0, layer 0: "):
                normalizer.fit_transform([cloud])
            return
        expected = brute_local(cloud, center)
    ours = normalizer.fit_transform([cloud])[0, 0]
    # Both are a handful of correctly rounded operations on values <= 1.
    np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-14)
    scaled = normalizer.fit_transform([np.ldexp(cloud, exponent)])[0, 0]
    np.testing.assert_array_equal(scaled, ours)


def brute_landscapes(diagram, grid, n_landscapes):
    values = np.zeros((n_landscapes, len(grid)))
    for j, t in enumerate(grid):
        tents = sorted(
            # An infinite death is truncated at the end of the grid.
            (
                max(0.0, min(t - b, (grid[-1] if d == np.inf else d) - t))
                for b, d in diagram
            ),
            reverse=True,
        )
        for k, tent in enumerate(tents[:n_landscapes]):
            values[k, j] = tent
    return values


@FUZZ
@given(
    cells=st.lists(diagrams(), min_size=1, max_size=4),
    n_landscapes=st.integers(1, 4),
    resolution=st.integers(2, 40),
    sample_range=st.sampled_from([(0.0, 1.0), (0.0, 2.0), (-0.5, 1.5), "auto"]),
)
def test_landscapes_match_the_definition(cells, n_landscapes, resolution, sample_range):
    vectorizer = LandscapeVectorizer(
        n_landscapes=n_landscapes, sample_range=sample_range, resolution=resolution
    )
    finite = np.concatenate([d[np.isfinite(d)] for d in cells] + [np.empty(0)])
    if sample_range == "auto" and (finite.size == 0 or np.ptp(finite) == 0):
        with pytest.warns(UserWarning, match="sample_range='auto'"):
            vectorizer.fit(cells)
    else:
        vectorizer.fit(cells)
    ours = vectorizer.transform(cells)
    grid = vectorizer.grid_
    assert grid[0] < grid[-1] and np.isfinite(grid).all()
    expected = np.stack(
        [brute_landscapes(d, grid, n_landscapes).ravel() for d in cells]
    )
    # Tent values t - b or d - t are single correctly rounded subtractions in
    # both computations.
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-15)


def brute_weights(n_features, grid, layer_weights):
    step = np.diff(grid)
    trapezoid = np.r_[step, 0] / 2 + np.r_[0, step] / 2
    per_layer = n_features // len(layer_weights)
    return np.tile(trapezoid, n_features // len(grid)) * np.repeat(
        layer_weights, per_layer
    )


@st.composite
def landscape_matrices(draw):
    n_layers = draw(st.integers(1, 3))
    n_bins = draw(st.integers(2, 6))
    n_samples = draw(st.integers(2, 7))
    ticks = draw(
        hnp.arrays(
            np.int64, (n_samples, n_layers * n_bins), elements=st.integers(0, 16)
        )
    )
    weights = draw(hnp.arrays(np.int64, n_layers, elements=st.integers(0, 4))).astype(
        float
    )
    grid = np.array(
        sorted(draw(st.sets(st.integers(0, 64), min_size=n_bins, max_size=n_bins)))
    )
    return ticks / 16.0, grid / 16.0, weights


@FUZZ
@given(data=landscape_matrices(), exponent=st.sampled_from([0, 300, -300, 500]))
def test_kernels_match_brute_force_at_every_scale(data, exponent):
    X, grid, layer_weights = data
    weights = brute_weights(X.shape[1], grid, layer_weights)
    linear = np.array([[np.sum(weights * x * y) for y in X] for x in X])
    kernel = LandscapeKernel(grid=grid, layer_weights=layer_weights)
    # The lattice values make every product and sum exact or nearly so.
    np.testing.assert_allclose(kernel.fit_transform(X), linear, rtol=1e-12, atol=0)
    big = np.ldexp(X, exponent)
    np.testing.assert_array_equal(
        kernel.fit_transform(big), np.ldexp(kernel.fit_transform(X), 2 * exponent)
    )
    sq_dist = np.array([[np.sum(weights * (x - y) ** 2) for y in X] for x in X])
    mean = sq_dist.mean()
    rbf = LandscapeKernel(kernel="rbf", grid=grid, layer_weights=layer_weights)
    gamma = 1.0 / mean if mean > 0 else 1.0
    assert rbf.fit(X).gamma_ == pytest.approx(gamma, rel=1e-12)
    # exp of arguments computed in two summation orders: a few ulps of
    # arguments up to ~n_samples, so 1e-12 absolute.
    np.testing.assert_allclose(
        rbf.transform(X), np.exp(-gamma * sq_dist), rtol=0, atol=1e-12
    )
    np.testing.assert_array_equal(rbf.fit_transform(big), rbf.fit_transform(X))


@FUZZ
@given(
    data=landscape_matrices(),
    n_a=st.integers(2, 4),
    exponent=st.sampled_from([0, 600, -600]),
    seed=st.integers(0, 2**16),
)
def test_permutation_test_matches_enumerated_relabelings(data, n_a, exponent, seed):
    X, grid, layer_weights = data
    assume(len(X) - n_a >= 2)
    y = np.r_[np.zeros(n_a), np.ones(len(X) - n_a)]
    weights = brute_weights(X.shape[1], grid, layer_weights)

    def statistic(group_a):
        in_a = np.isin(np.arange(len(X)), group_a)
        diff = X[in_a].mean(0) - X[~in_a].mean(0)
        return np.sqrt(np.sum(weights * diff * diff))

    observed = statistic(np.arange(n_a))
    possible = np.array([statistic(c) for c in combinations(range(len(X)), n_a)])
    test = PermutationTest(
        n_permutations=30, grid=grid, layer_weights=layer_weights, random_state=seed
    ).fit(X, y)
    scale = max(observed, 1e-300)
    # The Gram-matrix route rounds differently from the direct difference of
    # means: agreement to 1e-9 of the statistic's size.
    assert test.statistic_ == pytest.approx(observed, rel=1e-9, abs=1e-9 * scale)
    gaps = np.abs(test.null_distribution_[:, None] - possible[None, :]).min(axis=1)
    assert (gaps <= 1e-9 * max(possible.max(), 1e-300) + 1e-12).all()
    assert 1 / 31 <= test.pvalue_ <= 1
    scaled = PermutationTest(
        n_permutations=30, grid=grid, layer_weights=layer_weights, random_state=seed
    ).fit(np.ldexp(X, exponent), y)
    assert scaled.statistic_ == np.ldexp(test.statistic_, exponent)
    assert scaled.pvalue_ == test.pvalue_


def test_activation_extractor_matches_a_numpy_forward_pass():
    torch = pytest.importorskip("torch")
    from sklandscapes import ActivationExtractor

    @FUZZ
    @given(
        widths=st.lists(st.integers(1, 4), min_size=2, max_size=4),
        n_points=st.integers(1, 5),
        seed=st.integers(0, 2**16),
    )
    def check(widths, n_points, seed):
        generator = torch.Generator().manual_seed(seed)
        layers = []
        for fan_in, fan_out in zip(widths[:-1], widths[1:]):
            linear = torch.nn.Linear(fan_in, fan_out)
            with torch.no_grad():
                linear.weight.copy_(torch.randn(fan_out, fan_in, generator=generator))
                linear.bias.copy_(torch.randn(fan_out, generator=generator))
            layers += [linear, torch.nn.ReLU()]
        net = torch.nn.Sequential(*layers[:-1])
        batch = np.random.default_rng(seed).normal(size=(n_points, widths[0]))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", NoHiddenLayerWarning)
            out = ActivationExtractor(inputs=batch).fit_transform([net])
        # A single Linear has no hidden layer, and the extractor says so.
        found = [w for w in caught if w.category is NoHiddenLayerWarning]
        assert len(found) == (len(widths) == 2)
        expected = batch
        for linear in layers[::2]:
            weight = linear.weight.detach().double().numpy()
            bias = linear.bias.detach().double().numpy()
            expected = expected @ weight.T + bias
            if linear is not layers[-2]:
                expected = np.maximum(expected, 0)
        assert out.shape == (1, len(widths))
        np.testing.assert_allclose(out[0, 0], batch, rtol=1e-6)
        # torch runs in float32: relative 1e-5 covers a few layers of it.
        np.testing.assert_allclose(out[0, -1], expected, rtol=1e-4, atol=1e-4)

    check()


# -------------------------------------------------------------- invalid inputs

small_cloud = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
junk = st.one_of(
    st.text(max_size=3),
    st.none(),
    st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-5, 0),
)


not_a_number = st.one_of(st.text(max_size=3), st.none(), st.lists(st.none()))
invalid_rips_params = {
    "coeff": st.one_of(
        st.integers(65522, 10**6), st.sampled_from([0, 1, 4, 9, 65535]), not_a_number
    ),
    "n_jobs": st.one_of(st.just(0), st.floats(0.1, 3.9), st.text(max_size=3)),
    "max_edge_length": st.one_of(st.floats(max_value=0.0), st.just(np.nan)),
    "radius": st.one_of(st.floats(max_value=0.0), st.just(np.nan), not_a_number),
    "metric": st.text(max_size=5).filter(lambda m: m not in METRICS),
    "homology_dimensions": st.one_of(
        st.integers(-5, -1), st.text(min_size=1, max_size=2), st.just(())
    ),
}
METRICS = {
    "euclidean",
    "sqeuclidean",
    "cityblock",
    "chebyshev",
    "cosine",
    "correlation",
    "minkowski",
    "precomputed",
}


@FUZZ
@given(data=st.data(), name=st.sampled_from(sorted(invalid_rips_params)))
def test_rips_invalid_parameters_are_named(data, name):
    value = data.draw(invalid_rips_params[name])
    with pytest.raises((ValueError, TypeError), match=name):
        RipsPersistence(**{name: value}).fit_transform([small_cloud])


@FUZZ
@given(
    name=st.sampled_from(["n_landscapes", "resolution", "sample_range"]),
    value=st.one_of(
        junk,
        st.tuples(junk, junk),
        st.tuples(st.floats(), st.floats()),
        st.just((-1e308, 1e308)),
        st.just((1.0, 1.0 + 1e-15)),
    ),
)
def test_vectorizer_invalid_parameters_are_named(name, value):
    if name == "sample_range" and isinstance(value, tuple):
        start, stop = value
        numeric = all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
        )
        if numeric and np.isfinite([start, stop]).all() and start < stop:
            with np.errstate(all="ignore"):
                grid = np.linspace(start, stop, 201)
            assume(not (np.isfinite(grid).all() and (np.diff(grid) > 0).all()))
    with pytest.raises((ValueError, TypeError), match=name):
        LandscapeVectorizer(**{name: value}).fit([np.array([[0.1, 0.2]])])


@FUZZ
@given(
    n_samples=st.integers(1, 3),
    n_layers=st.integers(1, 3),
    data=st.data(),
    defect=st.sampled_from(["nan", "one point", "1-D", "strings"]),
)
def test_bad_cells_are_named_by_every_cloud_estimator(
    n_samples, n_layers, data, defect
):
    X = np.empty((n_samples, n_layers), dtype=object)
    for index in np.ndindex(*X.shape):
        X[index] = small_cloud
    i = data.draw(st.integers(0, n_samples - 1))
    j = data.draw(st.integers(0, n_layers - 1))
    bad = {
        "nan": np.where(small_cloud == 1.0, np.nan, small_cloud),
        "one point": small_cloud[:1],
        "1-D": small_cloud[0],
        "strings": np.array([["a", "b"], ["c", "d"]]),
    }[defect]
    X[i, j] = bad
    for estimator in (ActivationNormalizer(), RipsPersistence()):
        with pytest.raises(ValueError, match=f"sample {i}, layer {j}: "):
            estimator.fit_transform(X)


@FUZZ
@given(
    layer_weights=st.one_of(
        st.lists(st.text(min_size=1, max_size=2), min_size=1, max_size=3),
        st.lists(st.floats(max_value=-1e-3), min_size=1, max_size=3),
        st.just([[1.0, 2.0]]),
    ),
    gamma=st.one_of(st.none(), st.floats(max_value=0.0)),
)
def test_kernel_invalid_parameters_are_named(layer_weights, gamma):
    X = np.ones((3, 6))
    with pytest.raises((ValueError, TypeError), match="layer_weights"):
        LandscapeKernel(layer_weights=layer_weights).fit(X)
    if gamma is not None:
        with pytest.raises((ValueError, TypeError), match="gamma"):
            LandscapeKernel(kernel="rbf", gamma=gamma).fit(X)


@FUZZ
@given(
    rows=st.lists(
        st.lists(
            st.one_of(st.floats(0, 1), st.text(max_size=2)), min_size=1, max_size=4
        ),
        min_size=2,
        max_size=4,
    )
)
def test_kernel_unreadable_x_is_named(rows):
    readable = len({len(r) for r in rows}) == 1 and all(
        isinstance(v, float) for r in rows for v in r
    )
    assume(not readable)
    with pytest.raises(ValueError, match=r"X( is ragged|\[\d+\] )"):
        LandscapeKernel().fit(rows)


@FUZZ
@given(
    position=st.integers(0, 7),
    bad=st.sampled_from([np.nan, None, "b", float("nan")]),
)
def test_permutation_labels_that_cannot_be_grouped_are_named(position, bad):
    y = [0, 0, 0, 0, 1, 1, 1, 1]
    y[position] = bad
    with pytest.raises(ValueError, match=r"^y "):
        PermutationTest(n_permutations=9).fit(np.ones((8, 3)), y)


@FUZZ
@given(X=st.dictionaries(st.text(max_size=2), st.just(small_cloud), min_size=1))
def test_dict_input_is_named(X):
    for estimator in (ActivationNormalizer(), RipsPersistence()):
        with pytest.raises(ValueError, match="X is a dict"):
            estimator.fit_transform(X)
