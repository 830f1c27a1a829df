"""Exact topological complexity, landscape depth, level shares, n_landscapes="auto"."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import quad

from sklandscapes import LandscapeVectorizer
from sklandscapes.landscapes import (
    landscape_depth,
    landscape_values,
    level_shares,
    tent_squared_integrals,
)
from sklandscapes.stats import landscape_norms, topological_complexity


def random_diagram(rng, n_pairs, scale=0.2):
    births = rng.uniform(-0.1, 0.9, n_pairs)
    return np.c_[births, births + rng.exponential(scale, n_pairs)]


def integral_of_squared_tents(diagram, start, stop):
    """Independent reference: adaptive quadrature of sum of squared tents."""
    total = 0.0
    for birth, death in diagram:
        death = stop if np.isinf(death) else death

        def square(t, b=birth, d=death):
            return max(0.0, min(t - b, d - t)) ** 2

        lo, hi = max(birth, start), min(death, stop)
        if hi > lo:
            middle = min(max((birth + death) / 2, lo), hi)
            total += quad(square, lo, middle)[0] + quad(square, middle, hi)[0]
    return total


def test_closed_form_matches_adaptive_quadrature(rng):
    diagrams = [random_diagram(rng, n) for n in (0, 1, 5, 40)]
    diagrams.append(np.array([[0.2, np.inf], [0.5, 0.7]]))
    exact = tent_squared_integrals(diagrams, (0.0, 1.0))
    reference = [integral_of_squared_tents(d, 0.0, 1.0) for d in diagrams]
    # quad integrates each quadratic piece to machine precision.
    np.testing.assert_allclose(exact, reference, rtol=1e-12, atol=1e-15)


def test_complexity_is_the_limit_of_fine_grid_norms(rng):
    """All levels on a fine grid converge to the closed form (trapezoid: O(h^2))."""
    diagram = random_diagram(rng, 30, scale=0.05)
    depth = landscape_depth(diagram)
    grid = np.linspace(0.0, 1.0, 20_001)
    values = LandscapeVectorizer(
        n_landscapes=depth, resolution=len(grid)
    ).fit_transform([diagram])
    on_grid = landscape_norms(values, (1, 1, depth, len(grid)), grid=grid)
    exact = topological_complexity([diagram])
    # Step 5e-5: the trapezoid error on tents of height ~0.05 is below 1e-6.
    np.testing.assert_allclose(on_grid, exact, rtol=1e-6)


def test_narrow_bars_that_a_coarse_grid_misses(rng):
    """Bars narrower than the grid step: the grid norm is 0, the exact one is not."""
    narrow = np.array([[0.3001, 0.3009], [0.6001, 0.6004]])
    grid = np.linspace(0, 1, 1001)
    values = landscape_values([narrow], grid, 2).reshape(1, -1)
    assert landscape_norms(values, (1, 1, 2, 1001), grid=grid)[0, 0] == 0
    expected = np.sqrt(2 * (0.0004**3 + 0.00015**3) / 3)
    np.testing.assert_allclose(topological_complexity([narrow])[0, 0], expected)


def test_complexity_layout_and_sample_range():
    layered = np.empty((2, 3, 2), dtype=object)
    for index in np.ndindex(layered.shape):
        layered[index] = np.array([[0.0, 1.0]]) * (index[1] + 1) / 4
    out = topological_complexity(layered)
    assert out.shape == (2, 3)
    # Two dimensions of the same diagram: sqrt(2) times one of them.
    np.testing.assert_allclose(
        out[0, 0], np.sqrt(2) * np.sqrt(2 * (1 / 8) ** 3 / 3), rtol=1e-14
    )
    with pytest.raises(ValueError, match="sample_range must be finite"):
        topological_complexity(layered, sample_range=(1.0, 0.0))
    with pytest.raises(ValueError, match="sample_range must be a pair"):
        topological_complexity(layered, sample_range=("a", None))


@settings(max_examples=40, deadline=None)
@given(
    births=st.lists(st.floats(0, 1, allow_nan=False), min_size=0, max_size=12),
    lengths=st.lists(st.floats(0, 1, allow_nan=False), min_size=12, max_size=12),
)
def test_depth_counts_the_nonzero_levels(births, lengths):
    diagram = np.c_[births, np.add(births, lengths[: len(births)])].reshape(-1, 2)
    depth = landscape_depth(diagram)
    # The number of pairs alive is constant between consecutive event times,
    # so the midpoints between them see every count; level k > 0 at t iff
    # at least k pairs are alive at t.
    events = np.unique(np.r_[diagram.ravel(), -1.0, 3.0])
    grid = (events[1:] + events[:-1]) / 2
    values = landscape_values([diagram], grid, depth + 1)[0]
    alive = ((diagram[:, :1] < grid) & (grid < diagram[:, 1:])).sum(axis=0)
    assert depth == alive.max()
    assert not values[depth].any()


def test_level_shares_and_auto_levels_keep_nine_equal_holes(rng):
    # Nine holes of almost equal length, as in the nine-disks input batch.
    nine = np.c_[0.1 + rng.uniform(0, 0.01, 9), 0.5 + rng.uniform(0, 0.01, 9)]
    noise = random_diagram(rng, 30, scale=0.01)
    diagrams = [np.r_[nine, noise]] * 3
    shares = level_shares(diagrams, np.linspace(0, 1, 201))[0, 0]
    assert shares[4] < 0.6 and shares[8] > 0.98
    assert np.all(np.diff(shares) >= -1e-15)
    vectorizer = LandscapeVectorizer(n_landscapes="auto").fit(diagrams)
    assert vectorizer.n_landscapes_ >= 9
    assert vectorizer.level_share_.shape == (1, 1)
    assert vectorizer.level_share_[0, 0] >= 0.99
    Xt = vectorizer.transform(diagrams[:1])
    assert Xt.shape == (1, vectorizer.n_landscapes_ * 201)
    assert vectorizer.shape_ == (1, 1, vectorizer.n_landscapes_, 201)
    # Fewer levels would carry less than the rule's 99%.
    assert shares[vectorizer.n_landscapes_ - 2] < 0.99


def test_auto_levels_fixed_at_fit(rng):
    train = [random_diagram(rng, 3, scale=0.05)]
    vectorizer = LandscapeVectorizer(n_landscapes="auto").fit(train)
    wide = [random_diagram(rng, 50, scale=0.3)]
    assert vectorizer.transform(wide).shape[1] == vectorizer.n_landscapes_ * 201
    assert LandscapeVectorizer(n_landscapes=3).fit(train).n_landscapes_ == 3


def test_auto_levels_stop_at_many_tiny_simultaneous_bars(rng):
    """A lattice's tiny squares: hundreds of overlapping bars carrying ~1.5%."""
    nine = np.c_[0.1 + rng.uniform(0, 0.01, 9), 0.5 + rng.uniform(0, 0.01, 9)]
    births = rng.uniform(0.02, 0.03, 400)
    tiny = np.c_[births, births + 0.03]
    diagrams = [np.r_[nine, tiny]] * 2
    grid = np.linspace(0, 1, 1001)
    shares = level_shares(diagrams, grid, max_levels=128)[0, 0]
    assert shares[8] < 0.99  # 99% would need many of the tiny bars' levels
    vectorizer = LandscapeVectorizer(n_landscapes="auto", resolution=1001)
    vectorizer.fit(diagrams)
    # Nine levels, then each further level adds less than 0.1% of the norm.
    assert vectorizer.n_landscapes_ == 9
    np.testing.assert_allclose(vectorizer.level_share_[0, 0], shares[8])
    assert shares[9] - shares[8] < 0.001 <= shares[8] - shares[7]


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    first=st.integers(1, 5),
    n_holes=st.integers(1, 40),
)
def test_auto_levels_found_in_steps_are_those_of_one_pass(seed, first, n_holes):
    """n_landscapes="auto" computes a few levels first and more only while no K
    short of them qualifies: the K and its share are those of one pass over
    every level (_AUTO_FIRST_LEVELS=_AUTO_MAX_LEVELS), whatever the first step."""
    import sklandscapes.landscapes as module

    rng = np.random.default_rng(seed)
    # Many overlapping holes of similar size need many levels.
    holes = np.c_[rng.uniform(0.1, 0.12, n_holes), rng.uniform(0.5, 0.6, n_holes)]
    diagrams = [
        np.r_[holes[: rng.integers(1, n_holes + 1)], random_diagram(rng, 10, 0.02)]
        for _ in range(3)
    ]
    fitted = {}
    for levels in (module._AUTO_MAX_LEVELS, first):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(module, "_AUTO_FIRST_LEVELS", levels)
            vectorizer = LandscapeVectorizer(n_landscapes="auto", resolution=101)
            fitted[levels] = vectorizer.fit(diagrams)
    one_pass, stepped = fitted[module._AUTO_MAX_LEVELS], fitted[first]
    assert stepped.n_landscapes_ == one_pass.n_landscapes_
    np.testing.assert_allclose(stepped.level_share_, one_pass.level_share_, rtol=1e-12)
