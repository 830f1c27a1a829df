"""PermutationTest and bands with the network as the unit (``groups``).

The level tests simulate the designs the experiments run: every sample is a
network effect plus a snapshot effect plus subsample noise, and the null
hypothesis (no difference between the labels) is true.
"""

import warnings
from itertools import combinations, product

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from sklandscapes import LandscapeKernel, PermutationTest
from sklandscapes.exceptions import UnbalancedReplicatesWarning
from sklandscapes.kernels import feature_weights
from sklandscapes.stats import confidence_band, mean_landscapes, unit_means

ALPHA = 0.05


def simulate(rng, n_networks, n_subsamples, n_features=6, shift=0.0, network=1.0):
    """Two labels; network, snapshot and subsample effects; ``shift`` at "b".

    Effects are skewed (exponential). The network effect, shared by a
    network's snapshots, is as large as the snapshot effect, shared by a
    snapshot's subsamples: both mislead a test that relabels single samples.
    """
    network = network * rng.exponential(size=(n_networks, 1, 1, n_features))
    snapshot = rng.exponential(size=(n_networks, 2, 1, n_features))
    noise = 0.5 * rng.exponential(size=(n_networks, 2, n_subsamples, n_features))
    X = network + snapshot + noise
    X[:, 1] += shift
    networks, labels, _ = np.meshgrid(
        np.arange(n_networks), ["a", "b"], np.arange(n_subsamples), indexing="ij"
    )
    return X.reshape(-1, n_features), labels.ravel(), networks.ravel()


def rejection_count(n_trials, n_networks, n_subsamples, use_groups, seed):
    rng = np.random.default_rng(seed)
    rejections = 0
    for trial in range(n_trials):
        X, y, networks = simulate(rng, n_networks, n_subsamples)
        test = PermutationTest(n_permutations=99, random_state=trial)
        test.fit(X, y, groups=networks if use_groups else None)
        rejections += test.pvalue_ <= ALPHA
    return rejections


def binomial_band(n_trials):
    """Counts of rejections that a test of level ALPHA gives 99.9% of the time."""
    return scipy_stats.binom.ppf([0.0005, 0.9995], n_trials, ALPHA)


@pytest.mark.parametrize(
    "n_networks, n_subsamples",
    [(30, 5), (100, 1)],
    ids=["digits design: 30 networks x 5 subsamples", "synthetic: 100 x 1"],
)
def test_network_as_unit_keeps_its_level(n_networks, n_subsamples):
    # With 99 random sign flips, P(p <= 0.05) is exactly 5/100 under H0.
    n_trials = 200
    rejections = rejection_count(n_trials, n_networks, n_subsamples, True, seed=1)
    low, high = binomial_band(n_trials)
    assert low <= rejections <= high


def test_unrestricted_test_fails_the_replicate_design():
    # Five subsamples of one snapshot share its snapshot effect: relabeling
    # them one by one finds differences that are not there. This test keeps
    # anyone from "simplifying" the experiments back to the paper's test.
    n_trials = 60
    rejections = rejection_count(n_trials, 30, 5, False, seed=2)
    assert rejections > binomial_band(n_trials)[1]
    assert rejections / n_trials > 0.3


def test_unrestricted_test_loses_its_level_the_other_way_when_paired():
    # One sample per snapshot, large network effects shared by both labels:
    # relabeling single samples mixes networks, and the test almost never
    # rejects, so it misses differences (next test).
    # A test of level 0.05 rejects at most once in 200 trials with
    # probability 4e-4.
    n_trials = 200
    rejections = rejection_count(n_trials, 100, 1, False, seed=3)
    assert rejections <= 1


def test_small_shift_shared_by_every_network_is_detected():
    rng = np.random.default_rng(4)
    # Networks differ more from each other than their snapshots do.
    X, y, networks = simulate(rng, 100, 1, shift=0.4, network=3.0)
    paired = PermutationTest(n_permutations=999, random_state=0)
    unrestricted = PermutationTest(n_permutations=999, random_state=0)
    assert paired.fit(X, y, groups=networks).pvalue_ <= 0.002
    assert unrestricted.fit(X, y).pvalue_ > 0.05


def brute_force_sign_flips(X, y, groups, a, b, weights):
    """Exact sign-flip p-value and null of the pair (a, b), from the features.

    Replicates averaged per (unit, label); units with both labels paired.
    """
    units = sorted(set(groups[y == a]) & set(groups[y == b]))
    differences = np.array(
        [
            X[(groups == u) & (y == a)].mean(0) - X[(groups == u) & (y == b)].mean(0)
            for u in units
        ]
    )
    null = np.array(
        [
            np.sqrt(
                (weights * ((np.array(signs) @ differences) / len(units)) ** 2).sum()
            )
            for signs in product([1.0, -1.0], repeat=len(units))
        ]
    )
    observed = null[0]  # all signs +1
    return observed, null, np.mean(null >= observed * (1 - 1e-9))


def test_groups_equal_an_exact_enumeration_of_sign_flips(rng):
    # 7 networks (128 sign flips, all enumerated), 2 or 3 subsamples each,
    # an eighth network seen at "a" only (left out, and counted).
    X, y, networks = simulate(rng, 7, 3)
    keep = ~((networks == 6) & (y == "b") & (np.arange(len(y)) % 3 == 0))
    X, y, networks = X[keep], y[keep], networks[keep]
    extra = rng.exponential(size=(2, X.shape[1]))
    X = np.r_[X, extra]
    y = np.r_[y, ["a", "a"]]
    networks = np.r_[networks, [7, 7]]
    grid = np.linspace(0, 1, 3)
    test = PermutationTest(n_permutations=1000, grid=grid)
    with pytest.warns(
        UnbalancedReplicatesWarning,
        match=r"1 unit\(s\) have unequal .* labels 'a' and 'b' \(unit 6: 3 and 2\)",
    ):
        test.fit(X, y, groups=networks)
    weights = feature_weights(X.shape[1], grid)
    observed, null, pvalue = brute_force_sign_flips(X, y, networks, "a", "b", weights)
    assert test.unit_ == "group"
    assert test.statistic_ == pytest.approx(observed, rel=1e-10)
    np.testing.assert_allclose(
        np.sort(test.null_distribution_), np.sort(null), rtol=1e-10
    )
    assert test.pvalue_ == pvalue
    record = test.table_[0]
    assert record["n_units"] == 7 and record["n_relabelings"] == 128
    assert (record["n_a_only"], record["n_b_only"]) == (1, 0)
    assert record["exhaustive"] is True
    # Samples of the tested networks: 7 x 3 at "a", 7 x 3 less one at "b".
    assert (record["n_a"], record["n_b"]) == (21, 20)


def test_unrestricted_pairs_are_enumerated_when_few(rng):
    # 6 against 6 samples: 924 relabelings, all of them for 999 asked.
    X = rng.normal(size=(12, 4))
    X[6:] += 0.8
    y = np.repeat([0, 1], 6)
    test = PermutationTest(n_permutations=999, random_state=0).fit(X, y)
    possible = np.array(
        [
            np.linalg.norm(X[list(c)].mean(0) - np.delete(X, list(c), 0).mean(0))
            for c in combinations(range(12), 6)
        ]
    )
    observed = np.linalg.norm(X[:6].mean(0) - X[6:].mean(0))
    assert len(test.null_distribution_) == 924
    np.testing.assert_allclose(
        np.sort(test.null_distribution_), np.sort(possible), rtol=1e-10
    )
    assert test.pvalue_ == np.mean(possible >= observed * (1 - 1e-9))
    assert test.table_[0]["exhaustive"] and test.table_[0]["n_relabelings"] == 924
    # One more sample: 1716 relabelings, more than asked, so random ones.
    X, y = np.r_[X, X[:1]], np.r_[y, 0]
    test = PermutationTest(n_permutations=999, random_state=0).fit(X, y)
    assert len(test.null_distribution_) == 999 and not test.table_[0]["exhaustive"]


@settings(max_examples=30, deadline=None)
@given(
    n_units=st.integers(2, 7),
    n_labels=st.integers(2, 3),
    replicates=st.lists(st.integers(0, 3), min_size=21, max_size=21),
    n_permutations=st.sampled_from([50, 200]),
    seed=st.integers(0, 2**16),
)
def test_groups_fuzzed_designs_match_the_brute_force(
    n_units, n_labels, replicates, n_permutations, seed
):
    # Any number of replicates per snapshot, snapshots missing at random:
    # every pair with >= 2 complete units equals the brute-force enumeration
    # when its 2**n_units sign flips are at most n_permutations.
    rng = np.random.default_rng(seed)
    counts = np.array(replicates[: n_units * n_labels]).reshape(n_units, n_labels)
    units = np.repeat(
        np.tile(np.arange(n_units)[:, None], n_labels).ravel(), counts.ravel()
    )
    labels = np.repeat(np.tile(np.arange(n_labels), n_units), counts.ravel())
    complete = [
        ((counts[:, a] > 0) & (counts[:, b] > 0)).sum()
        for a, b in combinations(range(n_labels), 2)
    ]
    X = rng.normal(size=(len(units), 5)) + rng.normal(size=(n_units, 5))[units]
    test = PermutationTest(n_permutations=n_permutations, random_state=0)
    present = sorted(set(labels.tolist()))
    assume(len(present) >= 1)
    if (
        len(present) < 2
        or min(
            ((counts[:, a] > 0) & (counts[:, b] > 0)).sum()
            for a, b in combinations(present, 2)
        )
        < 2
    ):
        with pytest.raises(ValueError, match="groups: labels|single group"):
            test.fit(X, labels, groups=units)
        return
    with warnings.catch_warnings():
        # Unequal replicates are the point here: the brute force averages
        # them the same way.
        warnings.simplefilter("ignore", UnbalancedReplicatesWarning)
        test.fit(X, labels, groups=units)
    assert len(complete) >= 1
    for record in test.table_:
        a, b = record["group_a"], record["group_b"]
        observed, null, pvalue = brute_force_sign_flips(
            X, labels, units, a, b, np.ones(5)
        )
        assert record["statistic"] == pytest.approx(observed, rel=1e-9, abs=1e-12)
        assert record["n_units"] == int(np.log2(len(null)))
        if record["exhaustive"]:
            assert record["pvalue"] == pytest.approx(pvalue, abs=1e-12)
        else:
            assert record["n_relabelings"] == n_permutations
            assert 1 / (n_permutations + 1) <= record["pvalue"] <= 1


def test_precomputed_gram_averages_replicates_the_same_way(rng):
    X, y, networks = simulate(rng, 12, 3)
    linear = PermutationTest(n_permutations=300, n_layers=2, random_state=1)
    linear.fit(X, y, groups=networks)
    K = LandscapeKernel().fit(X).transform(X)
    pre = PermutationTest(n_permutations=300, kernel="precomputed", random_state=1)
    pre.fit(K, y, groups=networks)
    assert pre.statistic_ == pytest.approx(linear.statistic_, rel=1e-10)
    assert pre.pvalue_ == linear.pvalue_
    # The per-layer terms add up to the whole, on the same sign flips.
    np.testing.assert_allclose(
        (linear.layer_statistics_**2).sum(axis=2), linear.statistics_**2, rtol=1e-10
    )
    assert linear.layer_null_distribution_.shape == (2, 300)


def test_layer_tests_with_groups_find_the_layer_that_moves(rng):
    X, y, networks = simulate(rng, 40, 2, n_features=8)
    X[y == "b", 4:] += 0.8  # the second of two layers of 4 features
    test = PermutationTest(n_permutations=999, n_layers=2, random_state=0)
    test.fit(X, y, groups=networks)
    adjusted = test.layer_pvalues_adjusted_[0, 1]
    assert adjusted[1] <= 0.002 and adjusted[0] > 0.05
    assert (test.layer_pvalues_adjusted_ >= test.layer_pvalues_).all()


def test_groups_bad_input_is_named(rng):
    X, y, networks = simulate(rng, 4, 1)
    test = PermutationTest(n_permutations=9)
    with pytest.raises(ValueError, match=r"groups must be 1-D .* y has 8 labels"):
        test.fit(X, y, groups=networks[:-1])
    with pytest.raises(ValueError, match="groups contains None"):
        test.fit(X, y, groups=[None] + list(networks[1:]))
    with pytest.raises(ValueError, match="groups contains NaN"):
        test.fit(X, y, groups=np.r_[np.nan, networks[1:]])
    # Networks 0-2 seen at "a" only, network 3 at both: one unit for the pair.
    shifted = np.where(y == "b", networks + 3, networks)
    with pytest.raises(ValueError, match="labels 'a' and 'b' share 1 unit"):
        test.fit(X, y, groups=shifted)


def test_band_and_means_average_replicates_and_resample_networks(rng):
    X, y, networks = simulate(rng, 20, 5)
    unit_rows = np.array(
        [X[(networks == n) & (y == label)].mean(0) for label in "ab" for n in range(20)]
    )
    unit_labels = np.repeat(["a", "b"], 20)
    by_unit = confidence_band(X, y, groups=networks, random_state=0)
    reference = confidence_band(unit_rows, unit_labels, random_state=0)
    np.testing.assert_allclose(by_unit.mean, reference.mean, rtol=1e-12)
    np.testing.assert_allclose(by_unit.lower, reference.lower, rtol=1e-12)
    np.testing.assert_allclose(by_unit.upper, reference.upper, rtol=1e-12)
    # Resampling the 100 samples as if independent: a band far too narrow.
    by_sample = confidence_band(X, y, random_state=0)
    assert ((by_sample.upper - by_sample.lower) < (by_unit.upper - by_unit.lower)).all()
    # Unequal replicates: every network weighs the same in the mean.
    keep = ~((networks == 0) & (y == "a") & (np.arange(len(y)) % 5 > 0))
    _, means = mean_landscapes(X[keep], y[keep], groups=networks[keep])
    expected = np.r_[X[keep][(networks[keep] == 0) & (y[keep] == "a")], unit_rows[1:20]]
    np.testing.assert_allclose(means[0], expected.mean(0), rtol=1e-12)
    with pytest.raises(ValueError, match="at least 2 units .* group 'a' has 1 units"):
        confidence_band(X[:10], y[:10], groups=networks[:10] * 0)


def test_groups_without_replicates_copy_no_more_than_the_unrestricted_test(rng):
    # The landscape matrix is the largest thing an experiment holds: pairing
    # networks must not add a copy of it (with replicates, the averaged
    # matrix is smaller than the samples').
    import tracemalloc

    X = rng.random((40, 50_000))
    y = np.repeat([0, 1], 20)
    peaks = []
    for groups in (None, np.tile(np.arange(20), 2)):
        tracemalloc.start()
        PermutationTest(n_permutations=99, n_layers=2).fit(X, y, groups=groups)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] <= 1.05 * peaks[0]


@pytest.mark.parametrize("seed", range(8))
def test_enumerated_pvalue_counts_the_observed_labels(seed):
    # A difference far below the vectors' norms: the statistic's rounding is
    # larger than 1e-10 of it, and the observed labels must still tie with
    # themselves among the enumerated relabelings.
    rng = np.random.default_rng(seed)
    X = 1000 + 0.01 * rng.random((12, 300))
    X[:6] += 0.05
    test = PermutationTest(n_layers=2).fit(X, np.repeat([0, 1], 6))
    assert test.table_[0]["exhaustive"]
    assert test.pvalue_ >= 1 / 924
    assert (test.layer_pvalues_[0, 1] >= 1 / 924).all()
    assert (test.layer_pvalues_adjusted_[0, 1] >= test.layer_pvalues_[0, 1]).all()
    networks = np.tile(np.arange(6), 2)
    paired = PermutationTest(n_layers=2).fit(X, np.repeat([0, 1], 6), groups=networks)
    # A sign vector and its opposite give the same statistic: at least 2 / 2**6.
    assert paired.pvalue_ >= 2 / 64 and (paired.layer_pvalues_[0, 1] >= 2 / 64).all()


def test_enumeration_memory_does_not_grow_with_the_relabelings(rng):
    # C(400, 2) = 79,800 splits, 255 MB as one array of contrasts: they are
    # made a block at a time instead.
    import tracemalloc

    X = rng.normal(size=(400, 3))
    y = np.r_[[0, 0], np.ones(398)]
    tracemalloc.start()
    test = PermutationTest(n_permutations=80_000).fit(X, y)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert test.table_[0]["exhaustive"] and len(test.null_distribution_) == 79_800
    assert peak < 40 * 2**20


def test_balanced_replicates_do_not_warn(rng):
    X, y, networks = simulate(rng, 10, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        PermutationTest(n_permutations=99).fit(X, y, groups=networks)


def test_unit_means_with_their_counts_give_the_test_on_the_replicates(rng):
    X, y, networks = simulate(rng, 12, 3)
    settings = dict(n_permutations=300, n_layers=2, random_state=1)
    whole = PermutationTest(**settings).fit(X, y, groups=networks)
    means, labels, units = unit_means(X, y, networks)
    counts = np.full(len(means), 3)
    streamed = PermutationTest(**settings).fit(
        means, labels, groups=units, n_replicates=counts
    )
    # Bit for bit: the test averages the replicates first anyway.
    for name in ("statistics_", "pvalues_", "layer_pvalues_adjusted_"):
        np.testing.assert_array_equal(getattr(streamed, name), getattr(whole, name))
    assert streamed.table_ == whole.table_
    # Without the counts, the rows would count as single samples.
    plain = PermutationTest(**settings).fit(means, labels, groups=units)
    assert plain.table_[0]["n_a"] == whole.table_[0]["n_a"] // 3


def test_unit_means_counts_are_checked(rng):
    X, y, networks = simulate(rng, 12, 3)
    means, labels, units = unit_means(X, y, networks)
    test = PermutationTest(n_permutations=99)
    with pytest.raises(ValueError, match="n_replicates needs groups"):
        test.fit(means, labels, n_replicates=np.ones(len(means), int))
    with pytest.raises(ValueError, match="one row per \\(unit, label\\); unit 0 has 3"):
        test.fit(X, y, groups=networks, n_replicates=np.ones(len(X), int))
    for bad in (np.zeros(len(means), int), np.ones(len(means)), [1, 2]):
        with pytest.raises(ValueError, match="n_replicates must be 1-D with one"):
            test.fit(means, labels, groups=units, n_replicates=bad)
    # Unequal counts at the two labels of a unit are the same warning as
    # unequal replicates.
    counts = np.full(len(means), 3)
    counts[0] = 2
    with pytest.warns(UnbalancedReplicatesWarning, match="2 and 3"):
        test.fit(means, labels, groups=units, n_replicates=counts)
