import re

import gudhi
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import pdist, squareform

import sklandscapes._validation as validation_module
import sklandscapes.persistence as persistence_module
from sklandscapes import (
    ActivationNormalizer,
    LandscapeVectorizer,
    LayerDistances,
    RipsPersistence,
)
from sklandscapes._validation import format_bytes

ripser = pytest.importorskip("ripser")


def finite_pairs(diagram):
    diagram = diagram[np.isfinite(diagram[:, 1])]
    diagram = diagram[diagram[:, 1] > diagram[:, 0]]
    return diagram[np.lexsort((diagram[:, 1], diagram[:, 0]))]


def activation_like_cloud(rng, n_points=120, width=8):
    """ReLU of a noisy random projection of a 2-D blob, as in an MLP layer."""
    latent = rng.normal(size=(n_points, 2))
    projection = rng.normal(size=(2, width))
    return np.maximum(latent @ projection + 0.3 * rng.normal(size=(n_points, width)), 0)


@pytest.mark.parametrize("local", [False, True])
def test_matches_ripser_py(rng, local):
    clouds = [activation_like_cloud(rng) for _ in range(3)]
    method = "local" if local else "global"
    normalized = ActivationNormalizer(method=method).fit_transform(clouds)
    ours = RipsPersistence(homology_dimensions=(0, 1), local=local).fit_transform(
        normalized
    )
    for i, cloud in enumerate(normalized[:, 0]):
        distances = squareform(pdist(cloud))
        if local:
            outside = np.linalg.norm(cloud, axis=1) >= 1 - 1e-9
            distances[np.ix_(outside, outside)] = 0
        reference = ripser.ripser(distances, distance_matrix=True, maxdim=1)["dgms"]
        for k in range(2):
            expected = finite_pairs(reference[k])
            got = finite_pairs(ours[i, 0, k])
            assert got.shape == expected.shape
            # ripser.py computes in float32: agreement to its precision.
            np.testing.assert_allclose(got, expected, atol=1e-6)


@pytest.mark.parametrize("m, radius", [(4, 1.0), (10, 2.5), (33, 0.3)])
def test_circle_closed_form(m, radius):
    angles = 2 * np.pi * np.arange(3 * m) / (3 * m)
    circle = radius * np.c_[np.cos(angles), np.sin(angles)]
    diagram = RipsPersistence().fit_transform([circle])[0, 0, 0]
    assert diagram.shape == (1, 2)
    np.testing.assert_allclose(
        diagram[0],
        [2 * radius * np.sin(np.pi / (3 * m)), np.sqrt(3) * radius],
        rtol=1e-12,
    )


def arms(directions, n_per_arm=40, length=2.0):
    """Segments from the origin along the given angles, sampled evenly."""
    t = np.linspace(0, length, n_per_arm)[1:]
    points = [np.zeros((1, 2))]
    for angle in directions:
        points.append(np.outer(t, [np.cos(angle), np.sin(angle)]))
    return np.concatenate(points)


@pytest.mark.parametrize(
    "directions, n_bars",
    [
        ([0.0, np.pi], 1),  # a segment through the origin
        ([0.0, 2 * np.pi / 3, 4 * np.pi / 3], 2),  # a "Y"
        ([0.0, np.pi / 2, np.pi, 3 * np.pi / 2], 3),  # an "X"
    ],
)
def test_local_homology_counts_branches(directions, n_bars):
    cloud = arms(directions)
    diagram = RipsPersistence(local=True, radius=1.0).fit_transform([cloud])[0, 0, 0]
    lengths = diagram[:, 1] - diagram[:, 0]
    # Arms sampled every 0.05 close the coned loops around 1.0; anything long
    # is a branch pair, anything else sampling noise.
    assert (lengths > 0.5).sum() == n_bars
    assert (lengths[lengths <= 0.5] < 0.1).all()


def test_global_homology_of_the_same_arms_sees_no_loop():
    cloud = arms([0.0, np.pi / 2, np.pi, 3 * np.pi / 2])
    diagram = RipsPersistence().fit_transform([cloud])[0, 0, 0]
    assert (diagram[:, 1] - diagram[:, 0] < 0.1).all()


def test_output_layout_and_essential_class(rng):
    X = [[rng.normal(size=(15, 3)), rng.normal(size=(12, 2))] for _ in range(2)]
    out = RipsPersistence(homology_dimensions=[0, 1, 2]).fit_transform(X)
    assert out.shape == (2, 2, 3)
    assert out.dtype == object
    for cell in out.ravel():
        assert cell.ndim == 2 and cell.shape[1] == 2
        np.testing.assert_array_equal(cell, cell[np.lexsort((cell[:, 1], cell[:, 0]))])
        assert (cell[:, 1] > cell[:, 0]).all()
    # H0 has exactly one essential class, born at 0.
    h0 = out[0, 0, 0]
    assert np.isinf(h0[:, 1]).sum() == 1
    # An int is a sequence of one: the axis stays.
    assert RipsPersistence(homology_dimensions=1).fit_transform(X).shape == (2, 2, 1)


def test_precomputed_equals_point_clouds(rng):
    clouds = [rng.normal(size=(25, 3)) for _ in range(2)]
    matrices = [squareform(pdist(c)) for c in clouds]
    from_points = RipsPersistence().fit_transform(clouds)
    from_matrices = RipsPersistence(metric="precomputed").fit_transform(matrices)
    for a, b in zip(from_points.ravel(), from_matrices.ravel()):
        np.testing.assert_array_equal(a, b)


def test_threshold_makes_classes_essential(rng):
    cloud = (
        2
        * np.c_[
            np.cos(np.linspace(0, 2 * np.pi, 30, endpoint=False)),
            np.sin(np.linspace(0, 2 * np.pi, 30, endpoint=False)),
        ]
    )
    full = RipsPersistence().fit_transform([cloud])[0, 0, 0]
    cut = RipsPersistence(max_edge_length=1.0).fit_transform([cloud])[0, 0, 0]
    np.testing.assert_allclose(cut[:, 0], full[:, 0])
    assert np.isinf(cut[:, 1]).all()


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_repeats=st.integers(1, 40),
    metric=st.sampled_from(["euclidean", "cityblock", "chebyshev"]),
    local=st.booleans(),
    finite_threshold=st.booleans(),
    n_features=st.sampled_from([3, 8, 17]),
)
def test_repeated_points_change_no_diagram(
    seed, n_repeats, metric, local, finite_threshold, n_features
):
    # Repeated points are dropped before Rips (ReLU layers have many); the
    # reference is the full distance matrix of every point, repeats included,
    # which goes to Rips as it is.
    rng = np.random.default_rng(seed)
    cloud = activation_like_cloud(rng, n_points=30, width=n_features)
    cloud = np.concatenate([cloud, cloud[rng.integers(0, 30, n_repeats)]])
    cloud = rng.permutation(cloud)
    if local:
        cloud /= np.median(np.linalg.norm(cloud, axis=1))
    distances = squareform(pdist(cloud, metric))
    max_edge_length = np.median(distances) if finite_threshold else np.inf
    settings_ = dict(
        homology_dimensions=(0, 1), local=local, max_edge_length=max_edge_length
    )
    ours = RipsPersistence(metric=metric, **settings_).fit_transform([cloud])
    cell = LayerDistances(distances, np.linalg.norm(cloud, axis=1))
    reference = RipsPersistence(metric="precomputed", **settings_).fit_transform([cell])
    for got, expected in zip(ours.ravel(), reference.ravel()):
        np.testing.assert_array_equal(got, expected)


def test_repeats_are_dropped_only_where_a_point_is_at_zero_from_itself(
    rng, monkeypatch
):
    cloud = rng.normal(size=(12, 3))
    repeated = np.concatenate([cloud, cloud[:4]])
    np.testing.assert_array_equal(persistence_module._without_repeats(repeated), cloud)
    # What reaches Rips: the distances of the distinct points only.
    sizes = []

    def counting_pdist(points, metric):
        sizes.append(len(points))
        return pdist(points, metric)

    monkeypatch.setattr(persistence_module, "pdist", counting_pdist)
    RipsPersistence(metric="cityblock").fit_transform([repeated])
    assert sizes == [12]
    # Cosine gives a point a distance of rounding size from itself (as it
    # does for one of these copies): a copy is a separate point with a short
    # H0 pair, kept as it is.
    cosine = squareform(pdist(repeated, "cosine"))
    assert cosine[np.arange(4), 12 + np.arange(4)].max() > 0
    sizes.clear()
    dims = dict(homology_dimensions=(0, 1))
    diagrams = RipsPersistence(metric="cosine", **dims).fit_transform([repeated])
    assert sizes == [16]
    reference = RipsPersistence(metric="precomputed", **dims).fit_transform([cosine])
    for got, expected in zip(diagrams.ravel(), reference.ravel()):
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("n_jobs", [1, 2, -1])
def test_results_do_not_depend_on_n_jobs(rng, n_jobs):
    X = [[rng.normal(size=(30, 3)) for _ in range(3)] for _ in range(5)]
    serial = RipsPersistence(homology_dimensions=(0, 1)).fit_transform(X)
    parallel = RipsPersistence(homology_dimensions=(0, 1), n_jobs=n_jobs).fit_transform(
        X
    )
    for a, b in zip(serial.ravel(), parallel.ravel()):
        np.testing.assert_array_equal(a, b)


def test_dask_backend_gives_the_same_diagrams(rng):
    # Through joblib's Dask backend (the way to a cluster), with worker threads
    # that would deadlock if anything inside a task sent nested work back to
    # the cluster.
    distributed = pytest.importorskip("distributed")
    from joblib import parallel_config

    X = [[rng.normal(size=(30, 3)) for _ in range(2)] for _ in range(6)]
    serial = RipsPersistence(homology_dimensions=(0, 1)).fit_transform(X)
    with (
        distributed.LocalCluster(
            processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
        parallel_config(backend="dask"),
    ):
        on_dask = RipsPersistence(homology_dimensions=(0, 1), n_jobs=-1).fit_transform(
            X
        )
    for a, b in zip(serial.ravel(), on_dask.ravel()):
        np.testing.assert_array_equal(a, b)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), shift=st.floats(-100, 100))
def test_diagrams_invariant_under_translation_and_row_order(seed, shift):
    rng = np.random.default_rng(seed)
    cloud = rng.normal(size=(20, 2))
    reference = RipsPersistence(homology_dimensions=(0, 1)).fit_transform([cloud])
    moved = RipsPersistence(homology_dimensions=(0, 1)).fit_transform(
        [rng.permutation(cloud) + shift]
    )
    for a, b in zip(reference.ravel(), moved.ravel()):
        # Translation changes distances by rounding only.
        np.testing.assert_allclose(a, b, atol=1e-9)


def test_coefficients_other_than_two(rng):
    # Z/3 and Z/2 agree for clouds in the plane (no torsion in Rips H1 here).
    cloud = rng.normal(size=(30, 2))
    z2 = RipsPersistence().fit_transform([cloud])[0, 0, 0]
    z3 = RipsPersistence(coeff=3).fit_transform([cloud])[0, 0, 0]
    np.testing.assert_allclose(z2, z3)
    with pytest.raises(ValueError, match="coeff must be a prime number, got 4"):
        RipsPersistence(coeff=4).fit([cloud])


def test_bad_input(rng):
    with pytest.raises(ValueError, match="sample 0, layer 0: has 1 point"):
        RipsPersistence().fit_transform([np.zeros((1, 3))])
    with pytest.raises(ValueError, match="sample 1, layer 0: contains 1 NaN"):
        RipsPersistence().fit_transform(
            [rng.normal(size=(4, 2)), np.array([[np.nan, 0], [1, 1]])]
        )
    with pytest.raises(ValueError, match="expected a square distance matrix"):
        RipsPersistence(metric="precomputed").fit_transform([np.zeros((3, 4))])
    with pytest.raises(ValueError, match="local=True needs the norms"):
        RipsPersistence(local=True, metric="precomputed").fit([np.zeros((3, 3))])
    with pytest.raises(ValueError, match="distinct non-negative integers"):
        RipsPersistence(homology_dimensions=(1, 1)).fit([rng.normal(size=(4, 2))])
    with pytest.raises(ValueError, match="'metric' parameter"):
        RipsPersistence(metric="hamming-ish").fit([rng.normal(size=(4, 2))])


def test_memory_guard_refuses_what_does_not_fit_and_passes_what_fits(rng, monkeypatch):
    # A simulated budget of exactly the estimate for 300 points: 300 fit, 301
    # do not, and the guard says so before anything is allocated.
    budget = persistence_module._dense_rips_bytes(300)
    monkeypatch.setattr(validation_module, "_available_memory", lambda: budget)
    fits, too_large = rng.normal(size=(300, 2)), rng.normal(size=(301, 2))
    assert RipsPersistence().fit_transform([fits]).shape == (1, 1, 1)
    expected = (
        r"(?s)sample 1, layer 0: 301 points need about "
        + re.escape(format_bytes(persistence_module._dense_rips_bytes(301)))
        + r" for exact Rips on the full distance matrix, "
        + re.escape(format_bytes(budget))
        + r" available.*approximation=eps"
    )
    with pytest.raises(ValueError, match=expected):
        RipsPersistence().fit_transform([fits, too_large])
    # The approximation is linear in the points: not refused.
    out = RipsPersistence(approximation=0.9, random_state=0).fit_transform([too_large])
    assert out.shape == (1, 1, 1)


def test_memory_guard_counts_the_edges_of_the_sparse_path(rng, monkeypatch):
    cloud = rng.uniform(size=(400, 2))
    all_pairs = persistence_module._sparse_rips_bytes(400, 400 * 399 // 2, 2)
    monkeypatch.setattr(validation_module, "_available_memory", lambda: all_pairs / 4)
    # Short edges: few of them, fits although all pairs would not.
    short = RipsPersistence(max_edge_length=0.05).fit_transform([cloud])
    assert short.shape == (1, 1, 1)
    n_edges = int((pdist(cloud) <= 0.9).sum())
    with pytest.raises(
        ValueError, match=rf"400 points need about .* on its {n_edges} edges <= max"
    ):
        RipsPersistence(max_edge_length=0.9).fit_transform([cloud])


def test_too_large_clouds_fail_before_allocating(rng, monkeypatch):
    monkeypatch.setattr(validation_module, "_available_memory", lambda: 1000)
    with pytest.raises(ValueError, match=r"(?s)20 points need .*1000.0 B available"):
        RipsPersistence().fit_transform([rng.normal(size=(20, 2))])


def test_available_memory_is_positive():
    available = validation_module._available_memory()
    assert available is None or available > 0


def _log_bottleneck(approximate, exact, dimension):
    """Bottleneck distance between the finite parts of two diagrams, log scale.

    H0's births are all 0 (log: -inf), so H0 is compared on its deaths: the
    optimal matching of two equally long lists of numbers pairs them sorted.
    """
    approximate = approximate[np.isfinite(approximate[:, 1])]
    exact = exact[np.isfinite(exact[:, 1])]
    if dimension == 0:
        assert len(approximate) == len(exact)
        return np.max(
            np.abs(np.log(np.sort(approximate[:, 1])) - np.log(np.sort(exact[:, 1])))
        )
    return gudhi.bottleneck_distance(np.log(approximate), np.log(exact))


@pytest.mark.parametrize(
    "n_points, n_features, epsilon", [(200, 2, 0.3), (150, 3, 0.5), (200, 3, 0.9)]
)
def test_approximation_is_within_the_stated_bound(rng, n_points, n_features, epsilon):
    clouds = [rng.normal(size=(n_points, n_features)) for _ in range(2)]
    exact = RipsPersistence(homology_dimensions=(0, 1)).fit_transform(clouds)
    approximate = RipsPersistence(
        homology_dimensions=(0, 1), approximation=epsilon, random_state=0
    ).fit_transform(clouds)
    bound = np.log(1 / (1 - epsilon))
    for i in range(len(clouds)):
        for k in range(2):
            ours, reference = approximate[i, 0, k], exact[i, 0, k]
            # Same essential classes: H0's one component, no H1 class survives.
            assert np.isinf(ours[:, 1]).sum() == np.isinf(reference[:, 1]).sum()
            # 1e-9: rounding of the logarithms and of GUDHI's own distances.
            assert _log_bottleneck(ours, reference, k) <= bound + 1e-9


def test_approximation_from_points_and_from_distances_agree(rng):
    cloud = rng.normal(size=(120, 3))
    settings = dict(homology_dimensions=(0, 1), approximation=0.5, random_state=3)
    from_points = RipsPersistence(**settings).fit_transform([cloud])
    from_matrix = RipsPersistence(metric="precomputed", **settings).fit_transform(
        [squareform(pdist(cloud))]
    )
    for ours, reference in zip(from_points[0, 0], from_matrix[0, 0]):
        # GUDHI's Euclidean distance and pdist round differently, by an ulp.
        np.testing.assert_allclose(ours, reference, rtol=1e-12)


def test_approximation_is_reproducible_and_independent_of_n_jobs(rng):
    clouds = [rng.normal(size=(100, 2)) for _ in range(5)]
    settings = dict(homology_dimensions=(0, 1), approximation=0.7, random_state=7)
    serial = RipsPersistence(**settings).fit_transform(clouds)
    again = RipsPersistence(**settings).fit_transform(clouds)
    parallel = RipsPersistence(n_jobs=2, **settings).fit_transform(clouds)
    for index in np.ndindex(*serial.shape):
        np.testing.assert_array_equal(serial[index], again[index])
        np.testing.assert_array_equal(serial[index], parallel[index])


def test_approximation_scales_exactly_and_honours_max_edge_length(rng):
    cloud = rng.normal(size=(80, 2))
    rips = RipsPersistence(homology_dimensions=(0, 1), approximation=0.5)
    plain = rips.set_params(random_state=0).fit_transform([cloud])[0, 0]
    scaled = rips.fit_transform([np.ldexp(cloud, 700)])[0, 0]
    for ours, reference in zip(scaled, plain):
        np.testing.assert_array_equal(ours, np.ldexp(reference, 700))
    cut = rips.set_params(max_edge_length=0.3).fit_transform([cloud])[0, 0]
    for diagram in cut:
        finite = diagram[np.isfinite(diagram)]
        assert finite.max(initial=0) <= 0.3
    # Components still apart at 0.3 are essential.
    assert np.isinf(cut[0][:, 1]).sum() > 1


def test_approximation_keeps_classes_of_the_top_dimension():
    # Below max_edge_length=1.2 the unit square has its four sides and no
    # triangle: H1 is the complex's top dimension, and its class never dies.
    # A cloud of one repeated point is a single vertex: one essential H0 class.
    square = np.array([[0.0, 0], [1, 0], [1, 1], [0, 1]])
    rips = RipsPersistence(homology_dimensions=(0, 1), approximation=0.5)
    for cloud, max_edge_length in [(square, 1.2), (np.zeros((5, 3)), np.inf)]:
        rips.set_params(max_edge_length=max_edge_length)
        exact = rips.set_params(approximation=None).fit_transform([cloud])[0, 0]
        ours = rips.set_params(approximation=0.5).fit_transform([cloud])[0, 0]
        for got, expected in zip(ours, exact):
            np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(ours[0], [[0, np.inf]])


@pytest.mark.parametrize("epsilon", [0, 1, 1.5, -0.1, np.nan, np.inf, "0.1"])
def test_approximation_outside_zero_one_is_refused(rng, epsilon):
    with pytest.raises(ValueError, match="'approximation' parameter of RipsPers"):
        RipsPersistence(approximation=epsilon).fit([rng.normal(size=(4, 2))])


def test_approximation_refuses_local_homology_and_non_metrics(rng):
    cloud = rng.normal(size=(6, 2))
    with pytest.raises(ValueError, match="approximation needs local=False.*triangle"):
        RipsPersistence(approximation=0.1, local=True).fit([cloud])
    for metric in ["sqeuclidean", "cosine", "cityblock"]:
        with pytest.raises(
            ValueError, match=f"approximation needs metric=.*got metric='{metric}'"
        ):
            RipsPersistence(approximation=0.1, metric=metric).fit([cloud])


def test_progress_bar_goes_to_stderr(rng, capsys):
    RipsPersistence(verbose=1).fit_transform([rng.normal(size=(10, 2))] * 3)
    captured = capsys.readouterr()
    assert "Rips persistence" in captured.err
    assert "3/3" in captured.err


@pytest.mark.parametrize("metric", ["euclidean", "cityblock", "precomputed"])
@pytest.mark.parametrize("exponent", [700, -1000])
def test_huge_and_tiny_scales_give_the_scaled_diagrams_exactly(rng, metric, exponent):
    # Multiplying by 2**exponent is exact, so the diagrams must be too: squared
    # coordinates of 2**700 overflow and those of 2**-1000 underflow unless the
    # cloud is rescaled first.
    cloud = rng.normal(size=(10, 2))
    if metric == "precomputed":
        cloud = squareform(pdist(cloud))
    rips = RipsPersistence(homology_dimensions=(0, 1), metric=metric)
    plain = rips.fit_transform([cloud])[0, 0]
    scaled = rips.fit_transform([np.ldexp(cloud, exponent)])[0, 0]
    for ours, reference in zip(scaled, plain):
        np.testing.assert_array_equal(ours, np.ldexp(reference, exponent))
    assert len(plain[1]) > 0


@pytest.mark.parametrize("scale", [1e200, 1e-300])
def test_decimal_scales_match_the_unscaled_diagrams(rng, scale):
    cloud = rng.normal(size=(10, 2))
    rips = RipsPersistence(homology_dimensions=(0, 1))
    plain = rips.fit_transform([cloud])[0, 0]
    scaled = rips.fit_transform([cloud * scale])[0, 0]
    for ours, reference in zip(scaled, plain):
        # cloud * scale rounds each coordinate once (relative 1.1e-16); a few
        # roundings of the distances stay far below 1e-13.
        np.testing.assert_allclose(ours / scale, reference, rtol=1e-13)
    assert np.isfinite(scaled[0][:, 1]).sum() == 9


@pytest.mark.parametrize(
    "metric, bad_row",
    [("cosine", [0.0, 0.0, 0.0]), ("correlation", [2.0, 2.0, 2.0])],
)
def test_non_finite_distances_name_sample_layer_and_metric(rng, metric, bad_row):
    good = rng.normal(size=(6, 3))
    bad = np.vstack([good, bad_row])
    with pytest.raises(
        ValueError,
        match=rf"(?s)sample 1, layer 0: 6 distance\(s\) under metric='{metric}' "
        "are NaN",
    ):
        RipsPersistence(homology_dimensions=(0,), metric=metric).fit_transform(
            [good, bad]
        )
    with pytest.raises(ValueError, match="sample 0, layer 0: .*'correlation'"):
        RipsPersistence(metric="correlation").fit_transform([good[:, :1]])


@pytest.mark.parametrize("n_features", [3, 8, 17, 40])
def test_max_edge_length_keeps_edges_of_exactly_that_length_on_every_path(
    n_features,
):
    # Clouds where GUDHI's sparse path, whose rounding of edge lengths differs
    # from scipy's, used to drop the edge of length exactly max_edge_length
    # (and, from 8 features on, to give lengths one ulp away from pdist's).
    seeds = np.random.default_rng(n_features)
    for _ in range(60):
        cloud = seeds.normal(size=(6, n_features))
        distances = pdist(cloud)
        length = float(np.sort(distances)[3])
        sparse, dense = (
            RipsPersistence(
                homology_dimensions=(0, 1), max_edge_length=length, metric=metric
            ).fit_transform([cloud])[0, 0]
            for metric in ("euclidean", "minkowski")
        )
        reference = ripser.ripser(
            squareform(distances), distance_matrix=True, maxdim=0, thresh=length
        )["dgms"][0]
        for ours, theirs in zip(sparse, dense):
            np.testing.assert_array_equal(ours, theirs)
        # ripser.py keeps the edge too (<=): as many components die by then.
        assert np.isfinite(sparse[0][:, 1]).sum() == np.isfinite(reference[:, 1]).sum()


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_points=st.integers(2, 40),
    n_features=st.integers(1, 70),
    quantile=st.floats(0, 1),
)
def test_sparse_path_is_the_dense_path_bit_for_bit(
    seed, n_points, n_features, quantile
):
    # A finite max_edge_length never forms the distance matrix; its edges and
    # their lengths are still pdist's, so the diagrams are the dense path's.
    rng = np.random.default_rng(seed)
    cloud = rng.normal(size=(n_points, n_features)) * rng.uniform(0.1, 10)
    distances = pdist(cloud)
    length = float(np.quantile(distances, quantile))
    first, second = np.triu_indices(n_points, 1)
    np.testing.assert_array_equal(
        persistence_module._euclidean_lengths(cloud, first, second), distances
    )
    settings_ = dict(homology_dimensions=(0, 1, 2), max_edge_length=length)
    sparse = RipsPersistence(**settings_).fit_transform([cloud])
    dense = RipsPersistence(metric="precomputed", **settings_).fit_transform(
        [squareform(distances)]
    )
    for got, expected in zip(sparse.ravel(), dense.ravel()):
        np.testing.assert_array_equal(got, expected)


def test_coeff_above_gudhis_limit_and_n_jobs_zero_are_refused(rng):
    cloud = rng.normal(size=(5, 2))
    assert RipsPersistence(coeff=65521).fit_transform([cloud]).shape == (1, 1, 1)
    with pytest.raises(ValueError, match=r"'coeff' parameter .*\[2, 65521\]"):
        RipsPersistence(coeff=65537).fit([cloud])
    with pytest.raises(ValueError, match="'n_jobs' parameter of RipsPersistence"):
        RipsPersistence(n_jobs=0).fit([cloud])


# --- LayerDistances cells with metric="precomputed" -------------------------


@pytest.mark.parametrize("local", [False, True])
def test_distance_cells_give_the_diagrams_of_their_clouds(rng, local):
    clouds = [activation_like_cloud(rng) for _ in range(2)]
    method = "local" if local else "global"
    normalizer = ActivationNormalizer(method=method, center=False)
    normalized = normalizer.fit_transform(clouds)
    cells = normalizer.fit_transform([LayerDistances.from_points(c) for c in clouds])
    rips = RipsPersistence(homology_dimensions=(0, 1), local=local)
    from_clouds = rips.fit_transform(normalized)
    from_cells = rips.set_params(metric="precomputed").fit_transform(cells)
    for i, cloud in enumerate(normalized[:, 0]):
        gap = np.abs(cells[i, 0].distances - squareform(pdist(cloud))).max()
        for k in range(2):
            # Rips stability: the bottleneck distance between the diagrams of
            # two filtrations of the same points is at most the largest
            # difference of their edge lengths.
            assert (
                gudhi.bottleneck_distance(from_clouds[i, 0, k], from_cells[i, 0, k])
                <= gap + 1e-15
            )
    assert from_cells.shape == from_clouds.shape


def test_distance_cells_are_refused_where_clouds_are_needed(rng):
    cell = LayerDistances.from_points(rng.normal(size=(6, 2)))
    with pytest.raises(
        ValueError,
        match="sample 0, layer 0: is a LayerDistances .* metric='precomputed'",
    ):
        RipsPersistence().fit([cell])
    with pytest.raises(
        ValueError, match=r"(?s)sample 1, layer 0: a plain distance matrix.*Layer"
    ):
        RipsPersistence(local=True, metric="precomputed").fit([cell, cell.distances])


def test_bad_distance_cells_are_named(rng):
    cell = LayerDistances.from_points(rng.normal(size=(4, 2)))
    asymmetric = cell.distances.copy()
    asymmetric[0, 1] += 0.5
    with_nan = cell.distances.copy()
    with_nan[0, 1] = with_nan[1, 0] = np.nan
    bad = {
        "expected a square distance matrix": LayerDistances(
            cell.distances[:3], cell.norms
        ),
        "distance matrix is not symmetric": LayerDistances(asymmetric, cell.norms),
        "distance matrix has negative entries": LayerDistances(
            -cell.distances, cell.norms
        ),
        "distances: contains 2 NaN": LayerDistances(with_nan, cell.norms),
        r"norms has shape \(3,\); expected \(4,\)": LayerDistances(
            cell.distances, cell.norms[:3]
        ),
        r"centered_norms has shape \(5,\)": LayerDistances(
            cell.distances, cell.norms, np.ones(5)
        ),
        "norms has negative entries": LayerDistances(cell.distances, -cell.norms),
        "norms contains NaN": LayerDistances(
            cell.distances, np.r_[np.nan, cell.norms[1:]]
        ),
        "nonnegative must be a bool or None, got 'yes'": LayerDistances(
            cell.distances, cell.norms, None, "yes"
        ),
    }
    for message, bad_cell in bad.items():
        with pytest.raises(ValueError, match=f"sample 1, layer 0: .*{message}"):
            RipsPersistence(local=True, metric="precomputed").fit([cell, bad_cell])


def test_distance_cells_are_not_diagrams(rng):
    cell = LayerDistances.from_points(rng.normal(size=(4, 2)))
    with pytest.raises(ValueError, match="compute the diagrams first"):
        LandscapeVectorizer().fit([cell])


@pytest.mark.parametrize("n_jobs", [2, -1])
def test_distance_cells_do_not_depend_on_n_jobs(rng, n_jobs):
    cells = ActivationNormalizer(method="local").fit_transform(
        [LayerDistances.from_points(activation_like_cloud(rng, 40)) for _ in range(5)]
    )
    rips = RipsPersistence(local=True, metric="precomputed")
    serial = rips.fit_transform(cells)
    parallel = rips.set_params(n_jobs=n_jobs).fit_transform(cells)
    for a, b in zip(serial.ravel(), parallel.ravel()):
        np.testing.assert_array_equal(a, b)
