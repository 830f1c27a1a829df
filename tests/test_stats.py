import numpy as np
import pytest
from scipy import stats as scipy_stats

from sklandscapes import LandscapeKernel, LandscapeVectorizer, PermutationTest
from sklandscapes.kernels import feature_weights
from sklandscapes.stats import (
    confidence_band,
    landscape_curve_projection,
    landscape_norms,
    mean_landscapes,
)


def naive_statistic(X, y, a, b, weights):
    """Distance between group means, from the raw features (the naive way)."""
    diff = X[y == a].mean(0) - X[y == b].mean(0)
    return np.sqrt((diff * diff * weights).sum())


def test_statistic_and_null_match_the_naive_computation(rng):
    X = rng.normal(size=(14, 12))
    y = np.repeat([0, 1], 7)
    grid = np.linspace(0, 1, 4)
    test = PermutationTest(n_permutations=50, grid=grid, random_state=0).fit(X, y)
    weights = feature_weights(12, grid)
    assert test.statistic_ == pytest.approx(
        naive_statistic(X, y, 0, 1, weights), rel=1e-12
    )
    assert test.null_distribution_.shape == (50,)
    # Every null value is the statistic of some relabeling with the same sizes:
    # check the extremes are attainable bounds (non-negative, <= the largest
    # possible contrast norm).
    assert (test.null_distribution_ >= 0).all()
    exceed = (test.null_distribution_ >= test.statistic_ * (1 - 1e-10)).sum()
    assert test.pvalue_ == (1 + exceed) / 51


def test_permutation_statistics_equal_relabelled_means(rng):
    # Reconstruct the relabelings of one block and recompute them naively.
    from sklandscapes._relabelings import contrast_norms, random_splits

    X = rng.normal(size=(9, 5))
    K = X @ X.T
    null = contrast_norms(random_splits(9, 4, 20, seed=123), K)
    order = np.argsort(np.random.default_rng(123).random((20, 9)), axis=1)
    for p in range(20):
        labels = np.ones(9, dtype=int)
        labels[order[p, :4]] = 0
        expected = naive_statistic(X, labels, 0, 1, np.ones(5))
        assert null[p] == pytest.approx(expected, rel=1e-10)


def test_precomputed_gram_gives_the_same_result(rng):
    X = rng.normal(size=(12, 6))
    y = np.repeat(["a", "b", "c"], 4)
    linear = PermutationTest(n_permutations=200, random_state=3).fit(X, y)
    K = LandscapeKernel().fit(X).transform(X)
    pre = PermutationTest(n_permutations=200, kernel="precomputed", random_state=3).fit(
        K, y
    )
    np.testing.assert_allclose(pre.statistics_, linear.statistics_, rtol=1e-10)
    np.testing.assert_array_equal(pre.pvalues_, linear.pvalues_)


def test_many_groups_give_pairwise_tables(rng):
    X = rng.normal(size=(15, 4))
    X[10:] += 3.0
    y = np.repeat([0.5, 0.9, 0.99], 5)
    test = PermutationTest(n_permutations=300, random_state=1).fit(X, y)
    np.testing.assert_array_equal(test.groups_, [0.5, 0.9, 0.99])
    assert test.pvalues_.shape == test.statistics_.shape == (3, 3)
    np.testing.assert_array_equal(test.pvalues_, test.pvalues_.T)
    np.testing.assert_array_equal(np.diag(test.statistics_), 0)
    assert len(test.table_) == 3
    record = test.table_[1]
    assert (record["group_a"], record["group_b"]) == (0.5, 0.99)
    # 5 vs 5 samples: 2 of the 252 splits are as extreme, p >= 2/252.
    assert record["pvalue"] == test.pvalues_[0, 2] < 0.05
    assert record["statistic"] == pytest.approx(
        naive_statistic(X, y, 0.5, 0.99, np.ones(4)), rel=1e-12
    )
    assert not hasattr(test, "pvalue_")
    pd = pytest.importorskip("pandas")
    frame = test.to_frame()
    assert isinstance(frame, pd.DataFrame) and len(frame) == 3


@pytest.mark.parametrize("n_jobs", [1, 2, -1])
def test_reproducible_for_any_n_jobs(rng, n_jobs):
    X = rng.normal(size=(20, 3))
    y = np.repeat([0, 1], 10)
    reference = PermutationTest(n_permutations=2500, random_state=7).fit(X, y)
    other = PermutationTest(n_permutations=2500, random_state=7, n_jobs=n_jobs).fit(
        X, y
    )
    np.testing.assert_array_equal(
        reference.null_distribution_, other.null_distribution_
    )
    assert reference.pvalue_ == other.pvalue_


def test_progress_bar_counts_blocks_and_changes_nothing(rng, capsys):
    X = rng.normal(size=(24, 3))
    y = np.repeat([0, 1, 2], 8)
    quiet = PermutationTest(n_permutations=1500, random_state=3).fit(X, y)
    assert capsys.readouterr().err == ""
    shown = PermutationTest(n_permutations=1500, random_state=3, verbose=1).fit(X, y)
    err = capsys.readouterr().err
    # 3 pairs of groups x 2 blocks of at most 1000 permutations.
    assert "Permutation tests" in err and "6/6" in err
    np.testing.assert_array_equal(quiet.pvalues_, shown.pvalues_)


def test_calibration_under_the_null():
    # Both groups from one distribution: p-values are (close to) uniform, so
    # the rejection rate at 0.05 is Binomial(n_trials, 0.05) / n_trials.
    rng = np.random.default_rng(0)
    n_trials, alpha = 300, 0.05
    rejections = 0
    for trial in range(n_trials):
        X = rng.exponential(size=(16, 8))
        y = np.repeat([0, 1], 8)
        test = PermutationTest(n_permutations=199, random_state=trial).fit(X, y)
        rejections += test.pvalue_ <= alpha
    low, high = scipy_stats.binom.ppf([0.0005, 0.9995], n_trials, alpha)
    assert low <= rejections <= high


def test_clear_difference_is_detected(rng):
    diagrams_a = [np.array([[0.1, 0.3 + 0.02 * rng.random()]]) for _ in range(10)]
    diagrams_b = [np.array([[0.1, 0.6 + 0.02 * rng.random()]]) for _ in range(10)]
    vectorizer = LandscapeVectorizer(n_landscapes=1, resolution=101)
    X = vectorizer.fit_transform(diagrams_a + diagrams_b)
    test = PermutationTest(
        n_permutations=999, grid=vectorizer.grid_, random_state=0
    ).fit(X, np.repeat([0, 1], 10))
    assert test.pvalue_ < 0.01


def test_bad_input(rng):
    X = rng.normal(size=(6, 3))
    with pytest.raises(ValueError, match="single group"):
        PermutationTest().fit(X, np.zeros(6))
    with pytest.raises(ValueError, match="group 'b' has 1"):
        PermutationTest().fit(X, ["a"] * 5 + ["b"])
    with pytest.raises(ValueError, match="X has 6 samples, y has shape \\(5,\\)"):
        PermutationTest().fit(X, np.zeros(5))
    with pytest.raises(ValueError, match="square Gram matrix"):
        PermutationTest(kernel="precomputed").fit(X, np.repeat([0, 1], 3))
    asymmetric = rng.normal(size=(6, 6))
    with pytest.raises(ValueError, match="symmetric Gram matrix"):
        PermutationTest(kernel="precomputed").fit(asymmetric, np.repeat([0, 1], 3))
    with pytest.raises(ValueError, match="'n_permutations' parameter"):
        PermutationTest(n_permutations=0).fit(X, np.repeat([0, 1], 3))


def test_mean_landscapes_and_norms(rng):
    X = rng.random((6, 2 * 1 * 2 * 5))
    y = np.array([1, 0, 1, 0, 1, 0])
    groups, means = mean_landscapes(X, y)
    np.testing.assert_array_equal(groups, [0, 1])
    np.testing.assert_allclose(means[1], X[[0, 2, 4]].mean(0))
    grid = np.linspace(0, 1, 5)
    norms = landscape_norms(X, (2, 1, 2, 5), grid=grid)
    assert norms.shape == (6, 2)
    cube = X.reshape(6, 2, 2, 5)
    expected = np.sqrt(np.trapezoid(cube[3, 1] ** 2, grid, axis=-1).sum())
    assert norms[3, 1] == pytest.approx(expected, rel=1e-12)
    # The norm of the whole vector is the root of the sum of layer norms squared,
    # and equals the kernel's.
    K = LandscapeKernel(grid=grid).fit(X).transform(X)
    np.testing.assert_allclose((norms**2).sum(1), np.diag(K), rtol=1e-12)
    with pytest.raises(ValueError, match="X has 20 features per sample but shape"):
        landscape_norms(X, (2, 1, 2, 4))
    with pytest.raises(ValueError, match="one label per sample"):
        mean_landscapes(X, y[:-1])


def test_curve_projection_preserves_distances_when_full_rank(rng):
    X = rng.random((8, 3 * 1 * 1 * 4))
    y = np.repeat([0, 1], 4)
    grid = np.linspace(0, 1, 4)
    projection = landscape_curve_projection(
        X, y, (3, 1, 1, 4), n_components=4, grid=grid
    )
    assert projection.coordinates.shape == (2, 3, 4)
    _, means = mean_landscapes(X, y)
    # Six (group, layer) points in R^4: a 4-D PCA is a rotation, so distances
    # between projected points are landscape distances.
    w = feature_weights(12, grid).reshape(3, 4)[0]
    a, b = means[0].reshape(3, 4), means[1].reshape(3, 4)
    expected = np.sqrt(((a[1] - b[2]) ** 2 * w).sum())
    got = np.linalg.norm(projection.coordinates[0, 1] - projection.coordinates[1, 2])
    assert got == pytest.approx(expected, rel=1e-10)
    assert projection.explained_variance_ratio.sum() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="n_components must be between 1 and"):
        landscape_curve_projection(X, y, (3, 1, 1, 4), n_components=9)


@pytest.mark.parametrize(
    "labels, message",
    [
        ([0.0, 0.0, np.nan, 1.0, 1.0, 1.0], r"y contains NaN \(at position 2\)"),
        (["a", "a", None, "b", "b", "b"], r"y contains None \(at position 2\)"),
        ([1, 1, 1, "b", "b", "b"], r"y mixes labels of different types \(1 at"),
    ],
)
def test_labels_that_cannot_be_grouped_are_named(rng, labels, message):
    X = rng.normal(size=(6, 3))
    with pytest.raises(ValueError, match=message):
        PermutationTest(n_permutations=9).fit(X, labels)


@pytest.mark.parametrize("kernel", ["linear", "precomputed"])
def test_huge_vectors_give_the_scaled_statistic_not_inf_or_nan(rng, kernel):
    X = rng.normal(size=(8, 5))
    X[4:] += 1.0
    y = np.repeat([0, 1], 4)
    # 2**600 squared overflows: the Gram matrix used to hold inf.
    exponent = 600
    big = np.ldexp(X, exponent)
    if kernel == "precomputed":
        # The Gram matrix itself near the top of the float range.
        X, big = X @ X.T, np.ldexp(X @ X.T, 2 * 500)
        exponent = 500
    test = PermutationTest(n_permutations=99, kernel=kernel, random_state=0)
    plain = test.fit(X, y)
    plain_statistic, plain_pvalue = plain.statistic_, plain.pvalue_
    scaled = test.fit(big, y)
    # Power-of-two scaling is exact, so everything is too.
    assert scaled.statistic_ == np.ldexp(plain_statistic, exponent)
    assert scaled.pvalue_ == plain_pvalue
    assert np.isfinite(scaled.null_distribution_).all()


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_statistic_beyond_the_float_range_is_an_error(rng):
    X = np.ldexp(rng.normal(size=(6, 50)), 1022)
    X[3:] *= -1
    with pytest.raises(ValueError, match="exceeds the float range"):
        PermutationTest(n_permutations=9).fit(X, np.repeat([0, 1], 3))


def test_shape_layer_weights_and_n_jobs_are_named(rng):
    X = rng.random((4, 6))
    with pytest.raises(
        ValueError, match=r"shape must be 4 integers .*\('a', 1, 1, 1\)"
    ):
        landscape_norms(X, ("a", 1, 1, 1))
    with pytest.raises(ValueError, match="shape must be 4 integers .*got 6"):
        landscape_norms(X, 6)
    with pytest.raises(ValueError, match=r"X\[1\] cannot be read as numbers"):
        landscape_norms([[0.0] * 6, ["a"] * 6], (1, 1, 1, 6))
    with pytest.raises(ValueError, match=r"layer_weights must be .*\['a', 'b'\]"):
        PermutationTest(layer_weights=["a", "b"]).fit(X, [0, 0, 1, 1])
    with pytest.raises(ValueError, match="'n_jobs' parameter of PermutationTest"):
        PermutationTest(n_jobs=0).fit(X, [0, 0, 1, 1])


def test_identical_groups_give_statistic_zero_and_pvalue_one(rng):
    # The quadratic form of identical rows is 0 plus rounding (about 1e-19),
    # whose square root used to be the statistic and made the p-value random.
    X = np.tile(rng.random(201), (8, 1))
    for n_rows in range(4, 9):
        test = PermutationTest(n_permutations=99, random_state=0).fit(
            X[:n_rows], np.arange(n_rows) % 2
        )
        assert test.statistic_ == 0.0
        assert test.pvalue_ == 1.0


# --- Per-layer tests with Westfall-Young adjustment -------------------------


def brute_force_layer_tests(X, y, n_layers, weights, n_permutations, random_state):
    """Per-layer tests from the raw features, relabeling by relabeling.

    The relabelings are drawn as PermutationTest documents it (one seed per
    pair and block of 1000 from ``random_state``); everything else is
    computed independently: group means from the features, the layers'
    scale by enumerating every split, and step-down maxT by hand.
    """
    from itertools import combinations

    groups = np.unique(y)
    pairs = list(combinations(range(len(groups)), 2))
    n_blocks = -(-n_permutations // 1000)
    seeds = np.random.RandomState(random_state).randint(
        np.iinfo(np.int32).max, size=(len(pairs), n_blocks)
    )
    blocks = np.split(np.arange(X.shape[1]), n_layers)

    def layer_distances(rows, in_a):
        diff = rows[in_a].mean(0) - rows[~in_a].mean(0)
        return np.array([np.sqrt((diff[b] ** 2 * weights[b]).sum()) for b in blocks])

    results = {}
    for p, (a, b) in enumerate(pairs):
        rows = np.concatenate([X[y == groups[a]], X[y == groups[b]]])
        n_a, m = (y == groups[a]).sum(), len(rows)
        observed = layer_distances(rows, np.arange(m) < n_a)
        null = []
        for block in range(n_blocks):
            size = min(1000, n_permutations - 1000 * block)
            keys = np.random.default_rng(seeds[p, block]).random((size, m))
            for key in keys:
                in_a = np.zeros(m, dtype=bool)
                in_a[np.argsort(key)[:n_a]] = True
                null.append(layer_distances(rows, in_a))
        null = np.array(null)  # (n_permutations, n_layers)
        raw = (1 + (null >= observed * (1 - 1e-10)).sum(0)) / (1 + n_permutations)
        # Each layer's scale: the root mean square of its statistic over
        # every possible split of the pair.
        squares = []
        for members in combinations(range(m), n_a):
            in_a = np.zeros(m, dtype=bool)
            in_a[list(members)] = True
            squares.append(layer_distances(rows, in_a) ** 2)
        scale = np.sqrt(np.mean(squares, axis=0))
        t_observed, t_null = observed / scale, null / scale
        ranked = sorted(range(n_layers), key=lambda layer: -t_observed[layer])
        adjusted, running = np.empty(n_layers), 0.0
        for position, layer in enumerate(ranked):
            rest = ranked[position:]
            count = sum(
                t_null[q, rest].max() >= t_observed[layer] * (1 - 1e-10)
                for q in range(n_permutations)
            )
            running = max(running, (1 + count) / (1 + n_permutations))
            adjusted[layer] = running
        results[(a, b)] = observed, raw, adjusted
    return results


def test_layer_tests_match_a_brute_force_implementation(rng):
    # 3 layers of 2 landscapes on 4 grid points; unequal groups; two blocks
    # of relabelings per pair; layer 2 differs between groups 0 and 2.
    grid = np.linspace(0, 1, 4)
    layer_weights = np.array([1.0, 2.0, 0.5])
    # Groups large enough that 1100 relabelings are a random draw, not all.
    X = rng.random((24, 24))
    y = np.repeat([0, 1, 2], [7, 8, 9])
    X[y == 2, 16:] += 0.4
    n_permutations = 1100
    test = PermutationTest(
        n_permutations=n_permutations,
        grid=grid,
        layer_weights=layer_weights,
        n_layers=3,
        random_state=5,
    ).fit(X, y)
    weights = feature_weights(24, grid, layer_weights)
    expected = brute_force_layer_tests(X, y, 3, weights, n_permutations, 5)
    for (a, b), (observed, raw, adjusted) in expected.items():
        # Gram-matrix and raw-feature distances differ by rounding only.
        np.testing.assert_allclose(test.layer_statistics_[a, b], observed, rtol=1e-10)
        np.testing.assert_array_equal(test.layer_pvalues_[a, b], raw)
        np.testing.assert_array_equal(test.layer_pvalues_adjusted_[b, a], adjusted)
    assert test.layer_pvalues_adjusted_[0, 2, 2] < 0.01
    assert (test.layer_pvalues_adjusted_ >= test.layer_pvalues_).all()
    np.testing.assert_allclose(
        (test.layer_statistics_**2).sum(axis=2), test.statistics_**2, rtol=1e-10
    )
    pd = pytest.importorskip("pandas")
    frame = test.to_frame(layers=True)
    assert isinstance(frame, pd.DataFrame) and len(frame) == 3 * 3
    row = frame[(frame.group_a == 0) & (frame.group_b == 2) & (frame.layer == 2)]
    assert row.pvalue_adjusted.item() == test.layer_pvalues_adjusted_[0, 2, 2]


def test_whole_vector_results_do_not_change_with_n_layers(rng):
    X = rng.normal(size=(14, 12))
    y = np.repeat([0, 1], 7)
    plain = PermutationTest(n_permutations=1500, random_state=2).fit(X, y)
    layered = PermutationTest(n_permutations=1500, n_layers=4, random_state=2).fit(X, y)
    np.testing.assert_array_equal(plain.null_distribution_, layered.null_distribution_)
    np.testing.assert_array_equal(plain.statistics_, layered.statistics_)
    np.testing.assert_array_equal(plain.pvalues_, layered.pvalues_)
    assert layered.layer_null_distribution_.shape == (4, 1500)
    assert not hasattr(plain, "layer_pvalues_")


def test_layer_tests_control_the_family_wise_error_rate():
    # Both groups from one distribution, four correlated layers on different
    # scales: Westfall-Young keeps P(any layer rejected) at alpha, while the
    # unadjusted per-layer p-values reject far more often.
    rng = np.random.default_rng(0)
    n_trials, alpha, n_layers = 400, 0.05, 4
    scales = np.repeat([1.0, 10.0, 0.1, 1.0], 3)
    any_adjusted = any_raw = 0
    for trial in range(n_trials):
        shared = rng.exponential(size=(16, 3))
        X = (np.tile(shared, n_layers) + rng.exponential(size=(16, 12))) * scales
        test = PermutationTest(
            n_permutations=199, n_layers=n_layers, random_state=trial
        ).fit(X, np.repeat([0, 1], 8))
        any_adjusted += (test.layer_pvalues_adjusted_[0, 1] <= alpha).any()
        any_raw += (test.layer_pvalues_[0, 1] <= alpha).any()
    low, high = scipy_stats.binom.ppf([0.0005, 0.9995], n_trials, alpha)
    assert low <= any_adjusted <= high
    assert any_raw > high


def test_layer_tests_bad_input(rng):
    X = rng.normal(size=(6, 6))
    y = np.repeat([0, 1], 3)
    with pytest.raises(ValueError, match="n_layers=2 needs kernel='linear'"):
        PermutationTest(kernel="precomputed", n_layers=2).fit(X @ X.T, y)
    with pytest.raises(ValueError, match="n_layers=4 does not split the 6 features"):
        PermutationTest(n_layers=4).fit(X, y)
    with pytest.raises(ValueError, match="blocks of whole landscapes of 3 grid"):
        PermutationTest(n_layers=3, grid=[0.0, 0.5, 1.0]).fit(X, y)
    with pytest.raises(ValueError, match="layer_weights has 3 weights but n_layers=2"):
        PermutationTest(n_layers=2, layer_weights=[1, 1, 1]).fit(X, y)
    with pytest.raises(ValueError, match="'n_layers' parameter"):
        PermutationTest(n_layers=0).fit(X, y)
    with pytest.raises(ValueError, match="to_frame\\(layers=True\\) needs"):
        PermutationTest(n_permutations=9).fit(X, y).to_frame(layers=True)


def test_constant_layer_is_never_significant(rng):
    # Layer 0 is the same in every sample (e.g. the shared input batch).
    X = np.hstack([np.tile(rng.random(4), (10, 1)), rng.random((10, 4))])
    X[5:, 4:] += 2.0
    test = PermutationTest(n_permutations=99, n_layers=2, random_state=0).fit(
        X, np.repeat([0, 1], 5)
    )
    assert test.layer_statistics_[0, 1, 0] == 0.0
    assert test.layer_pvalues_[0, 1, 0] == test.layer_pvalues_adjusted_[0, 1, 0] == 1
    # Of the 252 splits of 5 + 5 samples, only the data's and its swap reach
    # layer 1's distance.
    assert test.layer_pvalues_adjusted_[0, 1, 1] <= 0.05


# --- Confidence bands -------------------------------------------------------


def covered(band, truth):
    return bool(((band.lower[0] <= truth) & (truth <= band.upper[0])).all())


def test_bands_cover_a_known_mean_curve_at_their_level():
    # Smooth Gaussian curves around sin(3t): over 400 repetitions, each band
    # covers the true mean (all of it, or one point) Binomial(400, 0.9) times.
    rng = np.random.default_rng(1)
    n_trials, n, level = 400, 40, 0.9
    t = np.linspace(0, 1, 30)
    truth = np.sin(3 * t)
    covariance = 0.3 * np.exp(-((t[:, None] - t) ** 2) / 0.02)
    factor = np.linalg.cholesky(covariance + 1e-9 * np.eye(len(t)))
    counts = dict.fromkeys(["bootstrap", "gaussian", "point", "pointwise_all"], 0)
    y = np.zeros(n)
    for trial in range(n_trials):
        X = truth + rng.standard_normal((n, len(t))) @ factor.T
        for method in ("bootstrap", "gaussian"):
            band = confidence_band(
                X,
                y,
                confidence=level,
                method=method,
                n_bootstrap=200,
                random_state=trial,
            )
            counts[method] += covered(band, truth)
        pointwise = confidence_band(
            X, y, confidence=level, simultaneous=False, method="gaussian"
        )
        counts["point"] += bool(
            pointwise.lower[0, 7] <= truth[7] <= pointwise.upper[0, 7]
        )
        counts["pointwise_all"] += covered(pointwise, truth)
    low, high = scipy_stats.binom.ppf([0.0005, 0.9995], n_trials, level)
    for name in ("bootstrap", "gaussian", "point"):
        assert low <= counts[name] <= high, (name, counts[name])
    # A pointwise band is no band for the whole curve.
    assert counts["pointwise_all"] < low


def test_bootstrap_band_covers_the_mean_landscape_of_random_bars():
    # One bar (b, d), b ~ U(0.1, 0.2), d ~ U(0.6, 0.7): the true mean
    # landscape is the average tent over a fine grid of (b, d) (midpoint
    # rule, error below 1e-5, far inside the band's width of about 1e-2).
    rng = np.random.default_rng(2)
    n_trials, n, level = 400, 60, 0.9
    grid = np.linspace(0, 1, 41)

    def tents(births, deaths):
        return np.maximum(0, np.minimum(grid - births[:, None], deaths[:, None] - grid))

    fine = (np.arange(300) + 0.5) / 300 * 0.1
    births, deaths = np.meshgrid(0.1 + fine, 0.6 + fine)
    truth = tents(births.ravel(), deaths.ravel()).mean(axis=0)
    hits = 0
    for trial in range(n_trials):
        X = tents(rng.uniform(0.1, 0.2, n), rng.uniform(0.6, 0.7, n))
        band = confidence_band(
            X, np.zeros(n), confidence=level, n_bootstrap=200, random_state=trial
        )
        hits += covered(band, truth)
    low, high = scipy_stats.binom.ppf([0.0005, 0.9995], n_trials, level)
    assert low <= hits <= high


def test_band_of_groups_and_constant_features(rng):
    X = rng.normal(size=(12, 3))
    X[:, 1] = 2.0  # the same in every sample: a band of width 0
    y = np.repeat(["a", "b"], 6)
    band = confidence_band(X, y, random_state=0)
    np.testing.assert_array_equal(band.groups, ["a", "b"])
    np.testing.assert_allclose(band.mean, mean_landscapes(X, y)[1], rtol=1e-12)
    np.testing.assert_array_equal(band.lower[:, 1], band.upper[:, 1])
    assert (band.lower <= band.mean).all() and (band.mean <= band.upper).all()
    again = confidence_band(X, y, random_state=0)
    np.testing.assert_array_equal(band.upper, again.upper)
    assert band.description == "95% simultaneous bootstrap band"
    # One feature: the simultaneous Gaussian band is the Student-t interval
    # (up to the simulated quantile).
    one = confidence_band(
        X[:6, :1], np.zeros(6), method="gaussian", n_bootstrap=20000, random_state=0
    )
    exact = confidence_band(
        X[:6, :1], np.zeros(6), simultaneous=False, method="gaussian"
    )
    np.testing.assert_allclose(one.upper, exact.upper, rtol=0.02)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(confidence=1.0), "'confidence' parameter of confidence_band"),
        (dict(confidence=0.0), "'confidence' parameter of confidence_band"),
        (dict(method="normal"), "'method' parameter of confidence_band"),
        (dict(n_bootstrap=10), "n_bootstrap=10 resamples cannot estimate a 0.95"),
        (dict(simultaneous="yes"), "'simultaneous' parameter of confidence_band"),
    ],
)
def test_band_bad_parameters_are_named(rng, kwargs, message):
    X = rng.normal(size=(6, 3))
    with pytest.raises(ValueError, match=message):
        confidence_band(X, np.zeros(6), **kwargs)


def test_band_needs_two_samples_per_group(rng):
    X = rng.normal(size=(5, 3))
    with pytest.raises(ValueError, match="group 'b' has 1"):
        confidence_band(X, ["a"] * 4 + ["b"])
    with pytest.raises(ValueError, match="one label per sample"):
        confidence_band(X, np.zeros(4))


def test_confidence_band_takes_the_fewest_resamples_it_documents(rng):
    X = rng.normal(size=(12, 5))
    X[:, 2] = 1.0  # a feature no sample varies on: a band of width 0
    y = np.repeat(["a", "b"], 6)
    band = confidence_band(X, y, confidence=0.9, n_bootstrap=10, random_state=0)
    assert np.isfinite(band.lower).all() and np.isfinite(band.upper).all()
    assert (band.lower[:, 2] == 1.0).all() and (band.upper[:, 2] == 1.0).all()
    with pytest.raises(ValueError, match="use at least 10"):
        confidence_band(X, y, confidence=0.9, n_bootstrap=9)
