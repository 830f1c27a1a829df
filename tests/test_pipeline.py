"""The topological core composed with scikit-learn: Pipeline, CV, grid search."""

import pickle

import numpy as np
import pandas as pd
import pytest
import sklearn
from conftest import noisy_circle, noisy_figure_eight
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.svm import SVC

import sklandscapes.persistence as persistence_module
from sklandscapes import (
    ActivationNormalizer,
    LandscapeKernel,
    LandscapeVectorizer,
    RipsPersistence,
)


def circles_and_eights(rng, n_per_class=15):
    X = [noisy_circle(rng, 50) for _ in range(n_per_class)]
    X += [noisy_figure_eight(rng, 50) for _ in range(n_per_class)]
    return X, np.repeat([0, 1], n_per_class)


def make_pipeline(memory=None):
    return Pipeline(
        [
            ("normalize", ActivationNormalizer()),
            ("rips", RipsPersistence()),
            ("landscapes", LandscapeVectorizer(n_landscapes=2, resolution=51)),
            ("kernel", LandscapeKernel()),
            ("svm", SVC(kernel="precomputed")),
        ],
        memory=memory,
    )


def test_pipeline_tells_circles_from_figure_eights(rng):
    X, y = circles_and_eights(rng)
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    scores = cross_val_score(make_pipeline(), X, y, cv=cv)
    # Two clearly separated H1 signatures: one long bar versus two.
    assert scores.mean() >= 0.9


def test_grid_search_with_memory_computes_persistence_once_per_fold(
    rng, tmp_path, monkeypatch
):
    X, y = circles_and_eights(rng, n_per_class=6)
    calls = []
    original = persistence_module._diagrams_of_cloud

    def counting(cell, **settings):
        calls.append(len(cell))
        return original(cell, **settings)

    monkeypatch.setattr(persistence_module, "_diagrams_of_cloud", counting)
    param_grid = {
        "landscapes__n_landscapes": [1, 2, 3],
        "kernel__kernel": ["linear", "rbf"],
    }
    search = GridSearchCV(make_pipeline(memory=str(tmp_path)), param_grid, cv=3)
    search.fit(X, y)
    n_candidates, n_folds, n = 6, 3, len(X)
    # Fitting: the training part of each fold once (the cache serves the other
    # candidates), plus the refit on all data. Scoring transforms the test part
    # of each fold for every candidate (a stateless step: precompute diagrams
    # once outside the search to avoid even that).
    expected = n_folds * (n - n // n_folds) + n + n_candidates * n
    assert len(calls) == expected
    # Without memory, every candidate refits the persistence step.
    calls.clear()
    GridSearchCV(make_pipeline(), param_grid, cv=3).fit(X, y)
    assert len(calls) == n_candidates * n_folds * (n - n // n_folds) + n + (
        n_candidates * n
    )


def test_grid_search_over_precomputed_diagrams(rng):
    X, y = circles_and_eights(rng, n_per_class=8)
    diagrams = RipsPersistence().fit_transform(ActivationNormalizer().fit_transform(X))
    model = Pipeline(
        [
            ("landscapes", LandscapeVectorizer(resolution=51)),
            ("kernel", LandscapeKernel()),
            ("svm", SVC(kernel="precomputed")),
        ]
    )
    search = GridSearchCV(
        model, {"landscapes__n_landscapes": [1, 3], "svm__C": [0.1, 10.0]}, cv=2
    ).fit(diagrams, y)
    assert search.best_score_ >= 0.9
    assert search.predict(diagrams[:3]).shape == (3,)


def test_fitted_pipeline_survives_pickling_and_clone(rng):
    X, y = circles_and_eights(rng, n_per_class=8)
    model = make_pipeline().fit(X, y)
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(
        restored.decision_function(X), model.decision_function(X)
    )
    params = model.get_params()
    assert params["landscapes__resolution"] == 51
    model.set_params(landscapes__resolution=21)
    assert model.named_steps["landscapes"].resolution == 21


def test_feature_names_flow_through_the_pipeline(rng):
    X, y = circles_and_eights(rng, n_per_class=3)
    features = Pipeline(
        [
            ("rips", RipsPersistence(homology_dimensions=(0, 1))),
            (
                "landscapes",
                LandscapeVectorizer(
                    n_landscapes=1, resolution=3, homology_dimensions=(0, 1)
                ),
            ),
        ]
    ).fit(X, y)
    names = features.get_feature_names_out()
    assert list(names[:4]) == [
        "layer0_H0_k1_t0",
        "layer0_H0_k1_t1",
        "layer0_H0_k1_t2",
        "layer0_H1_k1_t0",
    ]
    np.testing.assert_array_equal(names, features[-1].get_feature_names_out())
    # Dimensions that disagree with the diagrams' step are refused, not renamed.
    features.set_params(landscapes__homology_dimensions=(1, 2))
    features.fit(X, y)
    with pytest.raises(ValueError, match="do not match the homology_dimensions seen"):
        features.get_feature_names_out()


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_pipeline_predictions_do_not_depend_on_n_jobs(rng, n_jobs):
    X, y = circles_and_eights(rng, n_per_class=5)
    a = make_pipeline().fit(X, y).decision_function(X)
    b = make_pipeline().set_params(rips__n_jobs=n_jobs).fit(X, y).decision_function(X)
    np.testing.assert_array_equal(a, b)


def test_pipeline_under_the_global_pandas_setting(rng):
    X, y = circles_and_eights(rng, n_per_class=4)
    expected = make_pipeline().fit(X, y).decision_function(X)
    with sklearn.config_context(transform_output="pandas"):
        model = make_pipeline().fit(X, y)
        vectors = model[:-2].transform(X)
        gram = model[:-1].transform(X)
        decision = model.decision_function(X)
    # The ragged steps keep their containers; the feature matrices are
    # DataFrames named by the steps that made them.
    assert isinstance(vectors, pd.DataFrame)
    # Without homology_dimensions the diagrams are named by position, in the
    # DataFrame and in the pipeline's names alike.
    assert list(vectors.columns[:2]) == [
        "layer0_diagram0_k1_t00",
        "layer0_diagram0_k1_t01",
    ]
    np.testing.assert_array_equal(vectors.columns, model[:-2].get_feature_names_out())
    assert isinstance(gram, pd.DataFrame)
    assert list(gram.columns[:2]) == ["landscapekernel0", "landscapekernel1"]
    np.testing.assert_allclose(decision, expected, rtol=1e-12)


def test_feature_names_and_set_output_end_to_end(rng):
    X, y = circles_and_eights(rng, n_per_class=4)
    model = make_pipeline().set_params(landscapes__homology_dimensions=(1,))
    model = model.set_output(transform="pandas").fit(X, y)
    names = model[:-1].get_feature_names_out()
    assert list(names) == [f"landscapekernel{i}" for i in range(len(X))]
    vectors = model[:-2].transform(X)
    assert isinstance(vectors, pd.DataFrame)
    np.testing.assert_array_equal(
        vectors.columns, model.named_steps["landscapes"].get_feature_names_out()
    )
    np.testing.assert_array_equal(vectors.columns, model[:-2].get_feature_names_out())
    assert vectors.columns[0] == "layer0_H1_k1_t00"
    assert vectors.shape == (len(X), 2 * 51)
    # A ragged container cannot be a DataFrame: the normalizer accepts the
    # setting and keeps its object array.
    clouds = model[:1].transform(X)
    assert isinstance(clouds, np.ndarray) and clouds.dtype == object
    np.testing.assert_array_equal(
        model.decision_function(X), make_pipeline().fit(X, y).decision_function(X)
    )


def test_normalizer_names_its_layers(rng):
    X = [[rng.normal(size=(5, 2)), rng.normal(size=(5, 3))] for _ in range(2)]
    normalizer = ActivationNormalizer()
    with pytest.raises(NotFittedError, match="call fit first"):
        normalizer.get_feature_names_out()
    normalizer.fit(X)
    assert list(normalizer.get_feature_names_out()) == ["layer0", "layer1"]
    assert list(normalizer.get_feature_names_out(["in", "out"])) == ["in", "out"]
    with pytest.raises(ValueError, match="expected 2 \\(one per layer\\)"):
        normalizer.get_feature_names_out(["in"])


@pytest.mark.parametrize("step", [ActivationNormalizer(), RipsPersistence()])
def test_ragged_steps_accept_set_output_and_keep_their_container(rng, step):
    X = [rng.normal(size=(6, 2)) for _ in range(2)]
    expected = clone(step).fit_transform(X)
    for container in ["pandas", "default"]:
        out = clone(step).set_output(transform=container).fit_transform(X)
        assert type(out) is np.ndarray and out.shape == expected.shape
    with pytest.raises(ValueError, match="transform must be one of .* got 'csv'"):
        step.set_output(transform="csv")


def exact_landscapes(diagram, k, t):
    """lambda_k(t) of a diagram of finite pairs, by brute force (k from 0)."""
    if len(diagram) <= k:
        return np.zeros_like(t)
    tents = np.minimum(t[:, None] - diagram[:, 0], diagram[:, 1] - t[:, None])
    return np.sort(np.maximum(tents, 0.0), axis=1)[:, ::-1][:, k]


def exact_inner_product(a, b, n_landscapes):
    """sum_k integral over [0, 1] of lambda_k(a) lambda_k(b), in closed form.

    Every kink of a landscape is a birth, a death, or the meeting point
    (b_i + d_j) / 2 of a rising and a falling side. Between consecutive kinks
    of both diagrams both functions are linear, so their product is a
    quadratic, which Simpson's rule integrates exactly. Also returns
    sum_k integral |lambda_k(a)' lambda_k(b)'|, for the trapezoid error bound.
    """
    pairs = np.concatenate([a, b])
    kinks = np.concatenate(
        [[0.0, 1.0], pairs.ravel(), (pairs[:, 0][:, None] + pairs[:, 1]).ravel() / 2]
    )
    t = np.unique(np.clip(kinks, 0.0, 1.0))
    middle, length = (t[:-1] + t[1:]) / 2, np.diff(t)
    integral = slopes = 0.0
    for k in range(n_landscapes):
        fa, fb = (
            [exact_landscapes(d, k, x) for x in (t[:-1], middle, t[1:])] for d in (a, b)
        )
        integral += np.sum(
            length / 6 * (fa[0] * fb[0] + 4 * fa[1] * fb[1] + fa[2] * fb[2])
        )
        slopes += np.sum(np.abs((fa[2] - fa[0]) * (fb[2] - fb[0])) / length)
    return integral, slopes


def test_grid_search_over_resolution_keeps_the_exact_inner_product(rng):
    # Births and deaths on multiples of 0.04, so every kink of every landscape
    # (births, deaths, middles (b + d) / 2, crossings (b_i + d_j) / 2) lies on
    # a multiple of 0.02, a point of each grid searched (step 0.02, 0.005,
    # 0.001). Between grid points both landscapes are then linear, and the
    # trapezoid rule misses the integral of their product by exactly
    # (h^2 / 6) * integral of the product of their slopes, at most
    # (h^2 / 6) * integral |lambda' mu'| (the bound checked below).
    n_samples, n_layers, n_landscapes = 10, 2, 2
    diagrams = np.empty((n_samples, n_layers, 1), dtype=object)
    for index in np.ndindex(*diagrams.shape):
        births = 0.04 * rng.integers(0, 19, size=3)
        deaths = np.minimum(births + 0.04 * rng.integers(1, 7, size=3), 1.0)
        diagrams[index] = np.c_[births, deaths]
    y = np.repeat([0, 1], n_samples // 2)
    exact, slopes = np.zeros((2, n_samples, n_samples))
    for i, j in np.ndindex(n_samples, n_samples):
        for layer in range(n_layers):
            value, slope = exact_inner_product(
                diagrams[i, layer, 0], diagrams[j, layer, 0], n_landscapes
            )
            exact[i, j] += value
            slopes[i, j] += slope
    train, test = np.arange(0, n_samples, 2), np.arange(1, n_samples, 2)
    seen = []

    def kernel_error(model, X, y):
        vectorizer = model.named_steps["landscapes"]
        K = model[:-1].transform(X)  # test rows against the training rows
        h = vectorizer.grid_[1] - vectorizer.grid_[0]
        error = np.abs(K - exact[np.ix_(test, train)])
        seen.append(
            (vectorizer.resolution, error, h**2 / 6 * slopes[np.ix_(test, train)])
        )
        return -float(error.max())

    model = Pipeline(
        [
            (
                "landscapes",
                # scale=None: the kernel is compared with the integrals.
                LandscapeVectorizer(
                    n_landscapes=n_landscapes, weighting="l2", scale=None
                ),
            ),
            ("kernel", LandscapeKernel()),
            ("svm", SVC(kernel="precomputed")),
        ]
    )
    search = GridSearchCV(
        model,
        {"landscapes__resolution": [51, 201, 1001]},
        cv=[(train, test)],
        scoring=kernel_error,
    ).fit(diagrams, y)
    assert [resolution for resolution, *_ in seen] == [51, 201, 1001]
    for resolution, error, bound in seen:
        # Plus rounding: sums of about 2000 products of values below 1.
        assert (error <= bound + 1e-12).all(), resolution
    # The error shrinks as h^2 (16 times from 51 to 201 points, 25 times from
    # 201 to 1001); at 1001 points it is below 1e-4 of the largest value.
    assert seen[0][1].max() > 15 * seen[1][1].max() > 15 * 24 * seen[2][1].max()
    assert seen[2][1].max() < 1e-4 * np.abs(exact).max()
    assert search.best_params_ == {"landscapes__resolution": 1001}
    K = search.best_estimator_[:-1].transform(diagrams)
    h = 0.001
    assert (np.abs(K - exact) <= h**2 / 6 * slopes + 1e-12).all()
