import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, GroupKFold, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.svm import SVC

from sklandscapes import LandscapeKernel, LandscapeVectorizer, reshape_landscapes
from sklandscapes.exceptions import GridWarning
from sklandscapes.landscapes import (
    all_levels_grid_squares,
    landscape_values,
    quadrature_weights,
)

gudhi_representations = pytest.importorskip("gudhi.representations")


def random_diagrams(rng, n_diagrams, max_pairs=30):
    diagrams = []
    for _ in range(n_diagrams):
        n = rng.integers(0, max_pairs)
        births = rng.uniform(0, 0.8, n)
        diagrams.append(np.c_[births, births + rng.exponential(0.1, n)])
    return diagrams


def brute_force(diagram, grid, n_landscapes):
    """The definition, literally: sort all tent values at every grid point."""
    out = np.zeros((n_landscapes, len(grid)))
    for i, t in enumerate(grid):
        tents = np.sort(
            np.maximum(0, np.minimum(t - diagram[:, 0], diagram[:, 1] - t))
        )[::-1]
        k = min(n_landscapes, len(tents))
        out[:k, i] = tents[:k]
    return out


def test_equals_gudhi_over_sqrt2(rng):
    diagrams = random_diagrams(rng, 40)
    ours = LandscapeVectorizer(n_landscapes=4, resolution=101).fit_transform(diagrams)
    # gudhi's grid is np.linspace(start, stop, resolution) too, ends included.
    theirs = gudhi_representations.Landscape(
        num_landscapes=4, resolution=101, sample_range=[0.0, 1.0]
    ).fit_transform(diagrams)
    np.testing.assert_allclose(ours * np.sqrt(2), theirs, rtol=0, atol=1e-12)


@pytest.mark.parametrize("method", ["sweep", "tents", "auto"])
def test_equals_the_definition(rng, monkeypatch, method):
    # Two exact algorithms; which one a diagram gets depends on its support.
    import sklandscapes.landscapes as module

    ratio = {"sweep": 0.0, "tents": np.inf, "auto": module._SUPPORT_PER_CELL}[method]
    monkeypatch.setattr(module, "_SUPPORT_PER_CELL", ratio)
    diagrams = random_diagrams(rng, 25, max_pairs=12)
    # Long pairs, infinite deaths and zero-length pairs next to short ones.
    diagrams[1] = np.array([[0.0, 0.9], [0.05, 0.95], [0.3, np.inf], [0.4, 0.4]])
    # Duplicate pairs make ties, which fill several landscape levels at once.
    diagrams[0] = np.array([[0.1, 0.5], [0.1, 0.5], [0.1, 0.5], [0.2, 0.3]])
    grid = np.linspace(0, 1, 57)
    values = landscape_values(diagrams, grid, n_landscapes=6)
    for diagram, got in zip(diagrams, values):
        np.testing.assert_allclose(got, brute_force(diagram, grid, 6), atol=1e-15)


def test_hand_computed_values():
    # One pair (0, 1) and one (0.5, 1.5) on the grid 0, 0.25, ..., 1.5.
    vectorizer = LandscapeVectorizer(
        n_landscapes=2, sample_range=(0.0, 1.5), resolution=7
    )
    row = vectorizer.fit_transform([np.array([[0.0, 1.0], [0.5, 1.5]])])[0]
    first, second = row.reshape(2, 7)
    np.testing.assert_allclose(first, [0, 0.25, 0.5, 0.25, 0.5, 0.25, 0])
    np.testing.assert_allclose(second, [0, 0, 0, 0.25, 0, 0, 0])


def test_infinite_deaths_are_truncated_at_the_grid_end():
    vectorizer = LandscapeVectorizer(
        n_landscapes=1, sample_range=(0.0, 1.0), resolution=5
    )
    row = vectorizer.fit_transform([np.array([[0.0, np.inf]])])[0]
    np.testing.assert_allclose(row, [0, 0.25, 0.5, 0.25, 0])


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_landscape_properties(seed):
    rng = np.random.default_rng(seed)
    diagram = random_diagrams(rng, 1, max_pairs=15)[0]
    grid = np.linspace(-0.2, 1.5, 300)
    values = landscape_values([diagram], grid, n_landscapes=5)[0]
    # Decreasing in k and non-negative.
    assert (values >= 0).all()
    assert (np.diff(values, axis=0) <= 1e-15).all()
    # 1-Lipschitz in t.
    assert (np.abs(np.diff(values, axis=1)) <= np.diff(grid) + 1e-12).all()
    # Zero outside the support of the diagram.
    if len(diagram):
        outside = (grid <= diagram[:, 0].min()) | (grid >= diagram[:, 1].max())
        assert (values[:, outside] == 0).all()
    else:
        assert (values == 0).all()
    # Row order of the diagram does not matter.
    shuffled = landscape_values([rng.permutation(diagram)], grid, 5)[0]
    np.testing.assert_array_equal(values, shuffled)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_bins=st.integers(2, 80))
def test_all_levels_grid_squares_is_the_dense_sum(seed, n_bins):
    """The support-only sum against the dense one over every (pair, point)
    and against the landscapes themselves, all levels, on uneven grids too."""
    import sklandscapes.landscapes as module

    rng = np.random.default_rng(seed)
    diagrams = random_diagrams(rng, 7, max_pairs=25)
    diagrams[0] = np.array([[0.3, np.inf], [0.2, 0.2], [0.1, 0.5], [0.1, 0.5]])
    diagrams[1] = np.empty((0, 2))
    grid = np.sort(rng.uniform(-0.1, 1.1, n_bins))
    grid = np.unique(grid) if rng.random() < 0.5 else np.linspace(-0.1, 1.1, n_bins)
    weights = quadrature_weights(grid)
    dense = []
    for diagram in diagrams:
        pairs = np.where(np.isinf(diagram), grid[-1], diagram)
        tents = np.minimum(grid - pairs[:, :1], pairs[:, 1:] - grid)
        dense.append((np.maximum(tents, 0.0) ** 2 @ weights).sum())
    # Blocks of a few entries go through the blocking as well as one block.
    for block in (module._SQUARES_PER_BLOCK, 3):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(module, "_SQUARES_PER_BLOCK", block)
            got = all_levels_grid_squares(diagrams, grid)
        np.testing.assert_allclose(got, dense, rtol=1e-12, atol=1e-300)
    truncated = [np.where(np.isinf(d), grid[-1], d) for d in diagrams]
    depth = max(len(d) for d in diagrams)
    levels = landscape_values(truncated, grid, depth)
    np.testing.assert_allclose(
        got, (levels**2 @ weights).sum(axis=1), rtol=1e-12, atol=1e-300
    )
    with pytest.raises(ValueError, match="diagram 1 has a NaN birth or death"):
        all_levels_grid_squares([diagrams[0], np.array([[0.1, np.nan]])], grid)


def test_layout_names_and_reshape(rng):
    d = random_diagrams(rng, 12)
    X = np.empty((3, 2, 2), dtype=object)
    for i, cell in enumerate(d):
        X.flat[i] = cell
    vectorizer = LandscapeVectorizer(
        n_landscapes=3, resolution=11, homology_dimensions=(0, 1)
    ).fit(X)
    Xt = vectorizer.transform(X)
    assert Xt.shape == (3, 2 * 2 * 3 * 11)
    names = vectorizer.get_feature_names_out(["H0", "H1"])
    assert len(names) == Xt.shape[1]
    assert names[0] == "layer0_H0_k1_t00"
    assert names[2 * 3 * 11 + 3 * 11 + 11 + 7] == "layer1_H1_k2_t07"
    assert vectorizer.shape_ == (2, 2, 3, 11)
    assert int(np.prod(vectorizer.shape_)) == Xt.shape[1]
    cube = reshape_landscapes(Xt, *vectorizer.shape_[:3])
    expected = landscape_values([X[2, 1, 0]], vectorizer.grid_, 3)[0]
    np.testing.assert_array_equal(cube[2, 1, 0], expected)
    with pytest.raises(ValueError, match="does not split into n_layers=4"):
        reshape_landscapes(Xt, 4, 2, 5)
    unnamed = vectorizer.set_params(homology_dimensions=None).fit(X)
    # By position, whatever names are passed: the same as a DataFrame's columns.
    positional = unnamed.get_feature_names_out(["H0", "H1"])
    assert positional[2 * 3 * 11 + 3 * 11 + 11 + 7] == "layer1_diagram1_k2_t07"
    np.testing.assert_array_equal(positional, unnamed.get_feature_names_out())
    with pytest.raises(ValueError, match=r"has 1 names, expected 2 \(one per diagram"):
        unnamed.get_feature_names_out(["H1"])


@pytest.mark.parametrize(
    "dims, message",
    [
        ((1,), r"names 1 diagrams, but the samples of X have 2 per layer"),
        ((1, 1), "distinct non-negative integers"),
        ((-1, 0), "distinct non-negative integers"),
        (("H0", "H1"), "distinct non-negative integers"),
    ],
)
def test_homology_dimensions_must_name_each_diagram_once(rng, dims, message):
    X = np.empty((2, 1, 2), dtype=object)
    for i, cell in enumerate(random_diagrams(rng, 4)):
        X.flat[i] = cell
    with pytest.raises(ValueError, match=message):
        LandscapeVectorizer(homology_dimensions=dims).fit(X)


def test_homology_dimensions_as_in_rips_and_fixed_in_fit(rng):
    diagrams = random_diagrams(rng, 2)
    # An int, as RipsPersistence(homology_dimensions=1) takes it.
    vectorizer = LandscapeVectorizer(
        n_landscapes=1, resolution=2, homology_dimensions=1
    ).fit(diagrams)
    assert vectorizer.homology_dimensions_ == (1,)
    names = ["layer0_H1_k1_t0", "layer0_H1_k1_t1"]
    assert list(vectorizer.get_feature_names_out()) == names
    # The names are those of the fit, not of a parameter set since.
    vectorizer.set_params(homology_dimensions=(0, 1))
    assert list(vectorizer.get_feature_names_out()) == names


def test_auto_range_is_learned_in_fit_and_reused(rng):
    train = [np.array([[0.2, 0.9]]), np.array([[0.5, np.inf]])]
    vectorizer = LandscapeVectorizer(sample_range="auto", resolution=8).fit(train)
    assert vectorizer.grid_[0] == 0.2 and vectorizer.grid_[-1] == 0.9
    test = [np.array([[0.0, 3.0]])]
    np.testing.assert_array_equal(vectorizer.transform(test).shape, (1, 5 * 8))
    assert vectorizer.grid_[-1] == 0.9
    with pytest.warns(GridWarning, match="sample_range=\\(start, stop\\)"):
        LandscapeVectorizer(sample_range="auto").fit([np.empty((0, 2))])


def test_quadrature_is_the_trapezoid_rule():
    grid = np.linspace(0, 2, 9)
    values = np.minimum(grid, 2 - grid)  # a tent of height 1 on [0, 2]
    # The tent is linear between grid points: the trapezoid rule is exact.
    assert quadrature_weights(grid) @ values == pytest.approx(1.0)
    with pytest.raises(ValueError, match="increasing 1-D array"):
        quadrature_weights([1.0])


def test_bad_input(rng):
    d = [np.array([[0.1, 0.2]])]
    with pytest.raises(ValueError, match="'resolution' parameter"):
        LandscapeVectorizer(resolution=1).fit(d)
    with pytest.raises(ValueError, match="'n_landscapes' parameter"):
        LandscapeVectorizer(n_landscapes=0).fit(d)
    with pytest.raises(ValueError, match="start < stop"):
        LandscapeVectorizer(sample_range=(1.0, 0.0)).fit(d)
    with pytest.raises(ValueError, match="pair \\(start, stop\\)"):
        LandscapeVectorizer(sample_range=(0.0, 0.5, 1.0)).fit(d)
    fitted = LandscapeVectorizer().fit([[[d[0]], [d[0]]]])
    with pytest.raises(ValueError, match="fitted on \\(2, 1\\)"):
        fitted.transform([[[d[0]]]])
    with pytest.raises(ValueError, match="some deaths are smaller"):
        fitted.transform([[[np.array([[0.5, 0.1]])], [d[0]]]])


@pytest.mark.parametrize(
    "params, error, message",
    [
        (
            dict(n_landscapes=True),
            ValueError,
            "n_landscapes must be an integer, got the bool True",
        ),
        (
            dict(sample_range=("a", "b")),
            ValueError,
            r"pair \(start, stop\) of "
            r"numbers, got \('a', 'b'\)",
        ),
        (dict(sample_range=(None, 1)), ValueError, r"got \(None, 1\)"),
        (
            dict(sample_range=(-1e308, 1e308)),
            ValueError,
            "not finite: stop - start overflows",
        ),
        (
            dict(sample_range=(1.0, 1.0 + 1e-15)),
            ValueError,
            r"resolution=201 gives a "
            "grid that is not increasing",
        ),
    ],
)
def test_parameters_that_used_to_pass_or_give_raw_errors(params, error, message):
    with pytest.raises(error, match=message):
        LandscapeVectorizer(**params).fit([np.array([[0.1, 0.2]])])


def test_learned_range_that_overflows_is_refused():
    diagram = np.array([[-1e308, 0.0], [0.0, 1e308]])
    with pytest.raises(ValueError, match=r"learned as \(-1e\+308, 1e\+308\)"):
        LandscapeVectorizer(sample_range="auto").fit([diagram])


def test_raw_point_clouds_get_one_hint_that_rips_is_missing(rng):
    clouds = [rng.normal(size=(30, 2)) for _ in range(40)]
    with pytest.raises(ValueError, match="looks like point clouds") as info:
        LandscapeVectorizer().fit(clouds)
    assert "RipsPersistence" in str(info.value)
    assert "\n" not in str(info.value)


def test_huge_sizes_are_refused_before_allocating(monkeypatch):
    import sklandscapes._validation as validation

    # A machine with 1 MiB free, so that the test allocates nothing large.
    monkeypatch.setattr(validation, "_available_memory", lambda: 1 << 20)
    diagrams = [np.array([[0.1, 0.2]])] * 3
    with pytest.raises(
        ValueError,
        match=r"3 diagram\(s\) with n_landscapes=10000000 and resolution=201 would "
        r"need about 104.8 GiB, more than the 1.0 MiB",
    ):
        LandscapeVectorizer(n_landscapes=10**7).fit_transform(diagrams)
    with pytest.raises(
        ValueError, match=r"resolution=100000000 points would need about 762.9 MiB"
    ):
        LandscapeVectorizer(resolution=10**8).fit(diagrams)


def test_l2_weighting_makes_the_dot_product_the_trapezoid_integral(rng):
    births = rng.uniform(0, 0.6, size=(3, 4))
    diagrams = [np.c_[b, b + rng.uniform(0.05, 0.4, 4)] for b in births]
    plain = LandscapeVectorizer(n_landscapes=2, resolution=31).fit(diagrams)
    weighted = clone(plain).set_params(weighting="l2", scale=None).fit(diagrams)
    X, W = plain.transform(diagrams), weighted.transform(diagrams)
    grid = plain.grid_
    cube = X.reshape(3, 2, 31)
    expected = np.array(
        [
            [
                sum(np.trapezoid(cube[i, k] * cube[j, k], grid) for k in range(2))
                for j in range(3)
            ]
            for i in range(3)
        ]
    )
    # Same sums in another order: equal up to a few ulps of the values.
    np.testing.assert_allclose(W @ W.T, expected, rtol=1e-12)
    # The layout and names do not change; the default output (the landscape
    # values) is checked against hand-computed values in the tests above.
    assert weighted.shape_ == plain.shape_
    np.testing.assert_array_equal(
        weighted.get_feature_names_out(), plain.get_feature_names_out()
    )
    with pytest.raises(ValueError, match="'weighting' parameter"):
        LandscapeVectorizer(weighting="l1").fit(diagrams)


def test_unit_variance_scale_is_one_constant_learnt_in_fit(rng):
    diagrams = random_diagrams(rng, 12)
    new = random_diagrams(rng, 5)
    exact = LandscapeVectorizer(n_landscapes=3, weighting="l2", scale=None)
    scaled = clone(exact).set_params(scale="auto")
    E = exact.fit_transform(diagrams)
    S = scaled.fit_transform(diagrams)
    assert exact.scale_ == 1.0
    # The training rows have unit mean squared distance to their mean ...
    spread = ((S - S.mean(axis=0)) ** 2).sum(axis=1).mean()
    np.testing.assert_allclose(spread, 1.0, rtol=1e-12)
    # ... and the geometry is that of eq. (1) times scale_**2, on new rows too
    # (same products, one extra rounding per entry).
    np.testing.assert_allclose(
        scaled.scale_,
        1 / np.sqrt(((E - E.mean(axis=0)) ** 2).sum(axis=1).mean()),
        rtol=1e-12,
    )
    test = scaled.transform(new)
    np.testing.assert_allclose(
        test @ S.T, scaled.scale_**2 * exact.transform(new) @ E.T, rtol=1e-12
    )
    # fit_transform computes the rows once, and gives fit().transform() exactly.
    np.testing.assert_array_equal(S, clone(scaled).fit(diagrams).transform(diagrams))
    assert clone(exact).set_params(scale="unit_variance").fit(diagrams).scale_ == (
        scaled.scale_
    )
    # Unweighted vectors (the experiments', the plots') stay the values.
    plain = LandscapeVectorizer(n_landscapes=3)
    assert plain.get_params()["scale"] == "auto"
    np.testing.assert_array_equal(
        plain.fit_transform(diagrams),
        clone(plain).set_params(scale=None).fit_transform(diagrams),
    )
    assert plain.scale_ == 1.0
    unit = clone(plain).set_params(scale="unit_variance").fit_transform(diagrams)
    spread = ((unit - unit.mean(axis=0)) ** 2).sum(axis=1).mean()
    np.testing.assert_allclose(spread, 1.0, rtol=1e-12)
    with pytest.raises(ValueError, match="'scale' parameter of LandscapeVectorizer"):
        LandscapeVectorizer(scale="unit").fit(diagrams)


def test_unit_variance_scale_without_spread_or_of_huge_rows(rng):
    same = [np.array([[0.1, 0.4], [0.2, 0.3]])] * 3
    vectorizer = LandscapeVectorizer(weighting="l2").fit(same)
    # No spread to scale (the mean of equal rows may round): 1.0, documented.
    assert vectorizer.scale_ == 1.0
    # Weighted rows of about 1e225 (landscapes of 1e150 times the square
    # roots of weights of 1e148): their squares would overflow, the
    # power-of-two rescaling keeps the scale finite and right.
    diagrams = [d * 1e150 for d in random_diagrams(rng, 6)]
    huge = LandscapeVectorizer(weighting="l2", sample_range=(0.0, 1e150))
    rows = huge.fit_transform(diagrams)
    assert np.isfinite(rows).all()
    spread = ((rows - rows.mean(axis=0)) ** 2).sum(axis=1).mean()
    np.testing.assert_allclose(spread, 1.0, rtol=1e-12)


def test_recommended_pipeline_needs_no_unusual_C():
    """The README's pipeline separates its training stages with the usual C.

    The stored diagrams are those of the README's example at 40 networks
    (``tests/training_stage_diagrams.py``): H1 of every layer of nine-disks MLPs
    at training accuracies 0.7 and 0.75, 80 samples. Measured when written,
    5 folds grouped by network: without the scale, every C from 0.1 to 100
    scores 0.588 (the rows' norms are about 0.04, so the SVM barely fits) and
    the best of the decades 0.1 to 1e6 is 0.700 (C = 1e5); with it, C = 1
    scores 0.675 and the best of 0.1 to 100 is 0.713 (C = 10).
    """
    from training_stage_diagrams import load

    diagrams, thresholds, networks = load()
    stages = np.where(thresholds == thresholds.min(), "early", "late")
    cv = GroupKFold(n_splits=5)

    def scores(scale, grid):
        steps = [
            ("kernel", LandscapeKernel()),
            ("svm", SVC(kernel="precomputed")),
        ]
        X = diagrams
        if scale is None:
            # Nothing learnt from the data (fixed range): vectorize once.
            X = LandscapeVectorizer(n_landscapes=5, weighting="l2", scale=None)
            X = X.fit_transform(diagrams)
        else:
            vectorizer = LandscapeVectorizer(n_landscapes=5, weighting="l2")
            steps.insert(0, ("landscapes", vectorizer))
        search = GridSearchCV(Pipeline(steps), {"svm__C": grid}, cv=cv)
        search.fit(X, stages, groups=networks)
        return search.cv_results_["mean_test_score"]

    usual = [0.1, 1.0, 10.0, 100.0]
    before = scores(None, [0.1, 1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6])
    after = scores("auto", usual)
    # What the issue found: the usual grid cannot tell its Cs apart.
    assert np.ptp(before[:4]) == 0
    # One sample of 80 of slack: the two grids sample the same score curve
    # at different C (scale_ is no power of ten), measured 0.713 vs 0.700.
    one_sample = 1 / len(stages)
    assert after.max() >= before.max() - one_sample
    assert after.max() > before[:4].max() + 5 * one_sample
    # The default C already fits: measured 0.675 against 0.588.
    assert after[1] > before[1] + 5 * one_sample
    # scikit-learn's defaults, no grid: the same as C=1 of the search.
    default = Pipeline(
        [
            ("landscapes", LandscapeVectorizer(n_landscapes=5, weighting="l2")),
            ("kernel", LandscapeKernel()),
            ("svm", SVC(kernel="precomputed")),
        ]
    )
    np.testing.assert_allclose(
        cross_val_score(default, diagrams, stages, groups=networks, cv=cv).mean(),
        after[1],
    )
