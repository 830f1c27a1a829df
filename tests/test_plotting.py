import numpy as np
import pytest

pytest.importorskip("matplotlib")

from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402
from matplotlib.text import Text  # noqa: E402
from sklearn.base import clone  # noqa: E402

from sklandscapes import (  # noqa: E402
    LandscapeVectorizer,
    LayerDistances,
    PermutationTest,
)
from sklandscapes.plotting import (  # noqa: E402
    _floor_text,
    plot_activations,
    plot_complexity,
    plot_landscape_curves,
    plot_landscapes,
    plot_layer_pvalues,
    plot_pvalues,
    plot_training_complexity,
)
from sklandscapes.stats import (  # noqa: E402
    confidence_band,
    landscape_curve_projection,
)

STAGES = ["untrained", "trained (95%)", "trained (99%)"]


def drawn(fig):
    """Draw ``fig`` for real, so that every text has its final extent."""
    FigureCanvasAgg(fig).draw()
    return fig


def legend_texts(legend):
    return [t.get_text() for t in legend.get_texts()]


def assert_no_overlap(texts):
    boxes = [t.get_window_extent() for t in texts]
    for i, a in enumerate(boxes):
        for j in range(i):
            assert not a.overlaps(boxes[j]), (
                texts[i].get_text(),
                texts[j].get_text(),
            )


def test_plot_activations_projects_each_layer(rng):
    layers = np.empty(3, dtype=object)
    layers[0] = rng.normal(size=(40, 2))
    layers[1] = rng.normal(size=(40, 6)) * [10, 1, 1, 1, 1, 1]
    layers[2] = rng.normal(size=(40, 1))
    labels = np.repeat([0, 1], 20)
    fig = plot_activations(layers, labels, layers=[0, 1, 2])
    assert [ax.get_title() for ax in fig.axes] == ["layer 0", "layer 1", "layer 2"]
    offsets = fig.axes[0].collections[0].get_offsets()
    np.testing.assert_allclose(offsets, layers[0])  # 2-D layers are shown as is
    # The first principal axis of layer 1 carries the large coordinate.
    spread = fig.axes[1].collections[0].get_offsets().std(0)
    assert spread[0] > 5 * spread[1]
    fig3 = plot_activations(layers, labels, n_components=3)
    assert fig3.axes[0].name == "3d"
    assert fig3.axes[1].get_zlabel().startswith("PC 3 (")
    with pytest.raises(ValueError, match="layer 5 does not exist; there are 3"):
        plot_activations(layers, layers=[5])


def test_plot_activations_names_axes_by_what_they_show(rng):
    from sklearn.decomposition import PCA

    wide = rng.normal(size=(40, 6)) * [10, 3, 1, 1, 1, 1]
    fig = plot_activations([rng.normal(size=(40, 2)), wide, rng.normal(size=(40, 1))])
    labels = [(ax.get_xlabel(), ax.get_ylabel()) for ax in fig.axes]
    ratio = PCA(n_components=2).fit(wide).explained_variance_ratio_
    assert labels == [
        ("unit 1", "unit 2"),
        (f"PC 1 ({ratio[0]:.0%} var.)", f"PC 2 ({ratio[1]:.0%} var.)"),
        ("unit 1", "(none: 1 unit)"),
    ]


def test_plot_activations_ten_classes_get_distinct_colours_and_a_legend(rng):
    from matplotlib import colormaps

    digits = np.arange(10)[::-1].repeat(6)  # given in reverse, legend sorted
    fig = plot_activations([rng.normal(size=(60, 5))], digits, label_name="digit")
    (legend,) = fig.legends
    assert legend.get_title().get_text() == "digit"
    assert legend_texts(legend) == [str(d) for d in range(10)]
    colours = fig.axes[0].collections[0].get_facecolors()
    np.testing.assert_allclose(colours, colormaps["tab10"](digits))
    # tab10 gives ten different colours: no class is a faint copy of another.
    assert len({tuple(c) for c in colours}) == 10
    handles = legend.legend_handles
    for digit, handle in enumerate(handles):
        assert to_rgba(handle.get_color()) == colormaps["tab10"](digit)


def test_plot_activations_many_classes_get_a_colour_bar(rng):
    values = rng.random(60)  # a continuous label: 60 distinct values
    fig = plot_activations([rng.normal(size=(60, 3))], values, label_name="radius")
    assert fig.legends == []
    colour_bar = fig.axes[-1]
    assert colour_bar.get_ylabel() == "radius"
    np.testing.assert_allclose(fig.axes[0].collections[0].get_array(), values)
    with pytest.raises(ValueError, match=r"labels must have shape \(60,\)"):
        plot_activations([rng.normal(size=(60, 3))], values[:5])


def test_plot_landscapes_draws_group_means(rng):
    shape = (3, 1, 2, 11)
    X = rng.random((6, int(np.prod(shape))))
    y = np.repeat([0.5, 0.9, 1.0], 2)
    grid = np.linspace(0, 1, 11)
    fig = plot_landscapes(X, y, shape, grid=grid, groups=[1.0, 0.5], layers=[0, 2])
    assert len(fig.axes) == 4
    assert [len(ax.lines) for ax in fig.axes] == [2, 2, 2, 2]
    # Row 0 is group 1.0, column 1 is layer 2, line 1 is lambda_2.
    line = fig.axes[1].lines[1]
    expected = X[4:].mean(0).reshape(shape)[2, 0, 1]
    np.testing.assert_allclose(line.get_ydata(), expected)
    np.testing.assert_allclose(line.get_xdata(), grid)
    assert fig.axes[0].get_ylabel() == "threshold = 1"
    assert fig.axes[2].get_ylabel() == "threshold = 0.5"
    assert fig.axes[1].get_title() == "layer 2"
    with pytest.raises(ValueError, match="0.7 is not a label of y"):
        plot_landscapes(X, y, shape, groups=[0.7])


def test_plot_landscapes_says_what_it_shows(rng):
    shape = (2, 1, 3, 5)
    X = rng.random((6, int(np.prod(shape))))
    y = np.repeat(STAGES, 2)
    fig = drawn(plot_landscapes(X, y, shape, grid=np.linspace(0, 1, 5)))
    # Rows follow the labels as given, not their sorted order.
    assert [ax.get_ylabel() for ax in fig.axes[::2]] == STAGES
    assert fig.get_suptitle() == (
        "Average persistence landscapes by layer (columns) and threshold (rows)"
    )
    assert fig.get_supxlabel() == "filtration value t"
    assert fig.get_supylabel() == "$\\lambda_k(t)$"
    assert legend_texts(fig.axes[1].get_legend()) == [
        "$\\lambda_{1}$",
        "$\\lambda_{2}$",
        "$\\lambda_{3}$",
    ]
    assert_no_overlap([ax.yaxis.label for ax in fig.axes[::2]])
    fig = plot_landscapes(
        X, np.repeat([0.5, 0.9, 1.0], 2), shape, row_label="accuracy ≥ {:.0%}"
    )
    assert [ax.get_ylabel() for ax in fig.axes[::2]] == [
        "accuracy ≥ 50%",
        "accuracy ≥ 90%",
        "accuracy ≥ 100%",
    ]
    assert fig.get_supxlabel() == "grid index of t"  # no grid given
    fig = plot_landscapes(X, y, shape, row_label=str.upper, title="Fig. 2")
    assert fig.axes[0].get_ylabel() == "UNTRAINED" and fig.get_suptitle() == "Fig. 2"
    with pytest.raises(ValueError, match="row_label must be None, a format string"):
        plot_landscapes(X, y, shape, row_label=3)


def test_plot_landscapes_y_scales_per_layer(rng):
    shape = (2, 1, 1, 5)
    X = rng.random((4, int(np.prod(shape))))
    X[:, 5:] *= 0.01  # layer 1 is a hundred times smaller than layer 0
    y = [0, 0, 1, 1]

    def top(fig):
        return np.array([ax.get_ylim()[1] for ax in fig.axes]).reshape(2, 2)

    per_layer = top(plot_landscapes(X, y, shape))  # sharey="col", the default
    np.testing.assert_array_equal(per_layer[0], per_layer[1])  # rows comparable
    assert per_layer[0, 1] < 0.1 * per_layer[0, 0]  # layer 1 is not a flat line
    assert np.unique(top(plot_landscapes(X, y, shape, sharey="all"))).size == 1
    assert np.unique(top(plot_landscapes(X, y, shape, sharey=True))).size == 1
    per_row = top(plot_landscapes(X, y, shape, sharey="row"))
    np.testing.assert_array_equal(per_row[:, 0], per_row[:, 1])
    assert np.unique(top(plot_landscapes(X, y, shape, sharey=False))).size == 4
    with pytest.raises(ValueError, match="sharey must be 'all', 'row'.*got 'layer'"):
        plot_landscapes(X, y, shape, sharey="layer")


def small_bar_diagrams(rng, n_samples=4, n_layers=2):
    """Layered H0 diagrams whose bars all lie in [0.05, 0.3]."""
    diagrams = np.empty((n_samples, n_layers, 1), dtype=object)
    for index in np.ndindex(diagrams.shape):
        births = rng.uniform(0.05, 0.1, 3)
        diagrams[index] = np.c_[births, births + rng.uniform(0.05, 0.2, 3)]
    return diagrams


def test_plot_landscapes_undoes_l2_weights(rng):
    diagrams = small_bar_diagrams(rng)
    y = [0, 0, 1, 1]
    plain = LandscapeVectorizer(n_landscapes=2, resolution=101).fit(diagrams)
    weighted = clone(plain).set_params(weighting="l2").fit(diagrams)
    expected = plot_landscapes(plain.transform(diagrams), y, plain.shape_, plain.grid_)
    fig = plot_landscapes(
        weighted.transform(diagrams),
        y,
        weighted.shape_,
        weighted.grid_,
        weighting=weighted.weighting,
        scale=weighted.scale_,
    )
    for ax, reference in zip(fig.axes, expected.axes):
        for line, reference_line in zip(ax.lines, reference.lines):
            # Dividing by the square root of the weight and the scale it was
            # multiplied by leaves a few ulps of the values, at most 0.3.
            np.testing.assert_allclose(
                line.get_ydata(), reference_line.get_ydata(), rtol=0, atol=1e-14
            )
    # Read as they are, unscaled weighted vectors are ten times too small
    # (1/sqrt(0.01)).
    unscaled = clone(weighted).set_params(scale=None).fit(diagrams)
    unread = plot_landscapes(unscaled.transform(diagrams), y, unscaled.shape_)
    ratio = expected.axes[0].lines[0].get_ydata().max() / max(
        unread.axes[0].lines[0].get_ydata()
    )
    assert ratio == pytest.approx(10)
    # Without the vectorizer's scale the values are refused, not misdrawn.
    with pytest.raises(ValueError, match="output on this grid with this scale"):
        plot_landscapes(
            weighted.transform(diagrams) * 100,
            y,
            weighted.shape_,
            weighted.grid_,
            weighting="l2",
            scale=weighted.scale_,
        )
    with pytest.raises(ValueError, match="scale must be the vectorizer's positive"):
        plot_landscapes(
            weighted.transform(diagrams), y, weighted.shape_, weighted.grid_,
            weighting="l2", scale=0.0,
        )  # fmt: skip


def test_plot_landscapes_refuses_a_wrong_weighting(rng):
    diagrams = small_bar_diagrams(rng)
    plain = LandscapeVectorizer(n_landscapes=2, resolution=101).fit(diagrams)
    X, y, shape, grid = (
        plain.transform(diagrams),
        [0, 0, 1, 1],
        plain.shape_,
        plain.grid_,
    )
    with pytest.raises(ValueError, match="X is not LandscapeVectorizer.weighting='l2'"):
        plot_landscapes(X, y, shape, grid, weighting="l2")
    with pytest.raises(ValueError, match="weighting='l2' needs the grid"):
        plot_landscapes(X, y, shape, weighting="l2")
    with pytest.raises(ValueError, match="weighting must be None or 'l2'.*got 'L2'"):
        plot_landscapes(X, y, shape, grid, weighting="L2")
    with pytest.raises(ValueError, match=r"grid must have one value per grid point"):
        plot_landscapes(X, y, shape, grid[:-1], weighting="l2")


def test_plot_landscapes_x_range_fits_the_landscapes(rng):
    diagrams = small_bar_diagrams(rng)
    vectorizer = LandscapeVectorizer(n_landscapes=2, resolution=101).fit(diagrams)
    X, shape = vectorizer.fit_transform(diagrams), vectorizer.shape_
    grid = vectorizer.grid_  # steps of 0.01 on [0, 1]
    support = grid[(X.reshape(-1, 101) > 0).any(axis=0)]
    # From the grid point before the first non-zero value to the one after
    # the last, 5% wider on each side.
    first, last = support[0] - 0.01, support[-1] + 0.01
    margin = 0.05 * (last - first)
    fig = plot_landscapes(X, [0, 0, 1, 1], shape, grid)
    for ax in fig.axes:  # shared by every axes
        np.testing.assert_allclose(ax.get_xlim(), (first - margin, last + margin))
    assert last + margin < 0.35  # bars end by 0.3: a third of the grid
    fig = plot_landscapes(X, [0, 0, 1, 1], shape, grid, xlim="grid")
    assert fig.axes[-1].get_xlim() == (0.0, 1.0)
    # A landscape that reaches an end of the grid keeps that end, no margin.
    X[:, 0] = 0.5
    assert plot_landscapes(X, [0, 0, 1, 1], shape, grid).axes[0].get_xlim()[0] == 0
    fig = plot_landscapes(np.zeros_like(X), [0, 0, 1, 1], shape, grid)
    assert fig.axes[0].get_xlim() == (0.0, 1.0)  # nothing to fit: the grid
    with pytest.raises(ValueError, match="xlim must be 'data' or 'grid', got 'all'"):
        plot_landscapes(X, [0, 0, 1, 1], shape, grid, xlim="all")


def test_plot_landscapes_layer_names_and_y_name(rng):
    shape = (3, 1, 2, 5)
    X = rng.random((4, int(np.prod(shape))))
    y = [0.01, 0.01, 0.1, 0.1]
    fig = plot_landscapes(
        X,
        y,
        shape,
        layers=[2, 0],
        y_name="learning rate",
        layer_names=["input", "dense 1", "logits"],
    )
    assert [ax.get_title() for ax in fig.axes[:2]] == ["logits", "input"]
    assert fig.axes[0].get_ylabel() == "learning rate = 0.01"
    assert fig.get_suptitle() == (
        "Average persistence landscapes by layer (columns) and learning rate (rows)"
    )
    texts = [t.get_text() for t in fig.findobj(Text)]
    assert not any("threshold" in text for text in texts)
    with pytest.raises(ValueError, match="layer_names has 2 names for 3 layers"):
        plot_landscapes(X, y, shape, layer_names=["a", "b"])
    with pytest.raises(ValueError, match="layer_names must be a sequence.*'abc'"):
        plot_landscapes(X, y, shape, layer_names="abc")
    with pytest.raises(ValueError, match="layers: 3 does not exist; there are 3"):
        plot_landscapes(X, y, shape, layers=[3])


def converging_projection(rng, n_layers=6):
    """Three groups whose curves start in one point and end a few pixels apart."""
    shape = (n_layers, 1, 2, 8)
    base = rng.random(shape)
    X, y = [], []
    for stage, drift in zip(STAGES, [0.0, 0.05, 0.1]):
        for _ in range(2):
            v = base.copy()
            v[1:] += drift + 0.002 * rng.random(v[1:].shape)
            X.append(v.ravel())
            y.append(stage)
    return landscape_curve_projection(np.array(X), y, shape), y


def test_plot_landscape_curves(rng):
    X = rng.random((6, 4 * 1 * 1 * 5))
    projection = landscape_curve_projection(X, [0, 0, 1, 1, 2, 2], (4, 1, 1, 5))
    fig = plot_landscape_curves(projection, layer_labels="all")
    ax = fig.axes[0]
    assert len(ax.lines) == 3
    np.testing.assert_allclose(ax.lines[2].get_xdata(), projection.coordinates[2, :, 0])
    # Random groups: no two points coincide, so every layer of every curve is
    # numbered.
    assert sorted(t.get_text() for t in ax.texts) == sorted(["0", "1", "2", "3"] * 3)
    assert ax.get_xlabel().startswith("PC 1 (") and ax.get_xlabel().endswith("var.)")
    assert ax.get_ylabel().startswith("PC 2 (")
    assert ax.get_title() == "Activation landscape curves (numbers: layers)"
    legend = ax.get_legend()
    assert legend.get_title().get_text() == "threshold"
    assert legend_texts(legend) == ["0", "1", "2"]
    assert_no_overlap(drawn(fig).axes[0].texts)
    with pytest.raises(ValueError, match="must be a CurveProjection"):
        plot_landscape_curves(np.zeros((2, 3, 2)))
    with pytest.raises(ValueError, match="layer_labels must be 'ends' or 'all'"):
        plot_landscape_curves(projection, layer_labels="some")


def test_plot_landscape_curves_labels_do_not_overlap_where_curves_meet(rng):
    projection, y = converging_projection(rng)
    fig = plot_landscape_curves(projection, y_name="stage", order=y)
    ax = drawn(fig).axes[0]
    legend = ax.get_legend()
    assert legend.get_title().get_text() == "stage"
    assert legend_texts(legend) == STAGES  # as given, not sorted
    # The three curves share layer 0: one label, in grey; the ends are apart
    # by less than a label's width but each gets its own label.
    texts = sorted(t.get_text() for t in ax.texts)
    assert texts == ["0", "5", "5", "5"]
    (start,) = [t for t in ax.texts if t.get_text() == "0"]
    assert to_rgba(start.get_color()) == to_rgba("0.25")
    assert_no_overlap(ax.texts)
    frame = ax.get_window_extent()
    for text in ax.texts:
        box = text.get_window_extent()
        assert frame.contains(box.x0, box.y0) and frame.contains(box.x1, box.y1)
    # No label covers a marker: every label's box leaves the points free.
    points = ax.transData.transform(np.vstack([line.get_xydata() for line in ax.lines]))
    for text in ax.texts:
        assert not text.get_window_extent().count_contains(points), text.get_text()


def test_plot_complexity_lines_and_bands(rng):
    # Far from 0, so that no band is cut there (see the next test): with 3
    # units a studentized band is many times their spread wide.
    norms = 100.0 + rng.random((9, 11))
    y = np.repeat([0.5, 0.9, 1.0], 3)
    fig = plot_complexity(norms, y, random_state=0)
    ax = fig.axes[0]
    assert len(ax.lines) == 3 and len(ax.collections) == 3
    np.testing.assert_allclose(ax.lines[1].get_ydata(), norms[3:6].mean(0))
    assert ax.get_xlabel() == "layer (0: input)"
    assert ax.get_ylabel().startswith("topological complexity")
    assert ax.get_legend().get_title().get_text() == "threshold"
    band_text = "95% simultaneous bootstrap band of the mean"
    assert legend_texts(ax.get_legend()) == ["0.5", "0.9", "1", band_text]
    # The shaded band is the confidence band of the group's mean.
    band = confidence_band(norms, y, random_state=0)
    drawn = ax.collections[1].get_paths()[0].vertices[:, 1]
    np.testing.assert_allclose(drawn.max(), band.upper[1].max())
    np.testing.assert_allclose(drawn.min(), band.lower[1].min())
    pointwise = plot_complexity(
        norms, y, confidence=0.8, simultaneous=False, random_state=0
    )
    assert legend_texts(pointwise.axes[0].get_legend())[-1] == (
        "80% pointwise bootstrap band of the mean"
    )
    spread = plot_complexity(norms, y, band="std")
    assert legend_texts(spread.axes[0].get_legend())[-1] == "mean ± 1 std, cut at 0"
    assert len(plot_complexity(norms, y, band=None).axes[0].collections) == 0
    with pytest.raises(ValueError, match="band must be"):
        plot_complexity(norms, y, band="minmax")
    with pytest.raises(ValueError, match="'confidence' parameter"):
        plot_complexity(norms, y, confidence=95)
    with pytest.raises(ValueError, match="band='confidence' needs at least 2 .*has 1"):
        plot_complexity(norms[:3], [0.5, 0.9, 0.9])
    stages = np.repeat(STAGES, 3)
    fig = plot_complexity(norms, stages, y_name="stage", band="quartiles")
    legend = fig.axes[0].get_legend()
    assert legend.get_title().get_text() == "stage"
    assert legend_texts(legend) == STAGES + ["interquartile range"]
    np.testing.assert_allclose(fig.axes[0].lines[0].get_ydata(), norms[:3].mean(0))


def test_plot_complexity_cuts_a_confidence_band_below_zero_at_zero(rng):
    # Two units near 0 and one far: the studentized band reaches below 0.
    norms = np.abs(rng.normal(0.0, 0.01, size=(6, 4)))
    norms[2] += 0.5
    y = np.repeat([0.5, 0.9], 3)
    band = confidence_band(norms, y, random_state=0)
    assert (band.lower[0] < 0).any(), "the case must reach below 0"
    ax = plot_complexity(norms, y, random_state=0).axes[0]
    drawn = ax.collections[0].get_paths()[0].vertices[:, 1]
    assert drawn.min() == 0.0
    np.testing.assert_allclose(drawn.max(), band.upper[0].max())
    assert legend_texts(ax.get_legend())[-1].endswith("of the mean, cut at 0")
    # Negative values (not norms) keep the band as it is.
    ax = plot_complexity(norms - 1.0, y, random_state=0).axes[0]
    assert not legend_texts(ax.get_legend())[-1].endswith("cut at 0")


def test_plot_complexity_with_groups_draws_network_means_and_bands(rng):
    # 4 networks x 2 thresholds x 3 subsamples: lines and bands are those of
    # the 8 per-network means, not of the 24 samples.
    norms = rng.random((24, 5))
    y = np.repeat([0.5, 0.9], 12)
    networks = np.tile(np.repeat(np.arange(4), 3), 2)
    per_network = norms.reshape(8, 3, 5).mean(axis=1)
    thresholds = np.repeat([0.5, 0.9], 4)
    fig = plot_complexity(norms, y, groups=networks, random_state=0)
    expected = plot_complexity(per_network, thresholds, random_state=0)
    for drawn, reference in zip(fig.axes[0].lines, expected.axes[0].lines):
        np.testing.assert_allclose(drawn.get_ydata(), reference.get_ydata())
    for drawn, reference in zip(fig.axes[0].collections, expected.axes[0].collections):
        np.testing.assert_allclose(
            drawn.get_paths()[0].vertices, reference.get_paths()[0].vertices
        )
    with pytest.raises(ValueError, match="groups must be 1-D"):
        plot_complexity(norms, y, groups=networks[:5])


def test_pvalue_titles_say_what_was_relabelled(rng):
    X = rng.normal(size=(40, 4))
    y = np.repeat([0, 1], 20)
    networks = np.tile(np.arange(20), 2)
    random = PermutationTest(n_permutations=99, n_layers=2, random_state=0)
    title = plot_pvalues(random.fit(X, y)).axes[0].get_title()
    assert title.endswith("(99 permutations per pair)")
    random.fit(X, y, groups=networks)
    assert (
        plot_pvalues(random)
        .axes[0]
        .get_title()
        .endswith("(99 sign flips within groups per pair)")
    )
    assert (
        plot_layer_pvalues(random)
        .axes[0]
        .get_title()
        .endswith("99 sign flips within groups per pair")
    )
    every = PermutationTest(n_permutations=5000).fit(X[:12], np.repeat([0, 1], 6))
    assert (
        plot_pvalues(every)
        .axes[0]
        .get_title()
        .endswith("(every permutation of each pair)")
    )


def test_plot_landscapes_draws_confidence_bands(rng):
    X = rng.random((8, 2 * 1 * 2 * 5))
    y = np.repeat([0, 1], 4)
    fig = plot_landscapes(X, y, (2, 1, 2, 5), confidence=0.9, random_state=0)
    assert "90% simultaneous bootstrap band" in fig._suptitle.get_text()
    band = confidence_band(X, y, confidence=0.9, random_state=0)
    # Row 0 is group 0, column 1 layer 1, second collection level 2.
    drawn = fig.axes[1].collections[1].get_paths()[0].vertices[:, 1]
    expected = band.upper[0].reshape(2, 1, 2, 5)[1, 0, 1]
    np.testing.assert_allclose(drawn.max(), expected.max())
    assert not plot_landscapes(X, y, (2, 1, 2, 5)).axes[0].collections


def test_plot_layer_pvalues_marks_significant_layers(rng):
    X = rng.normal(size=(24, 6))
    X[16:, :2] += 4.0  # layer 0 of group 2 moves
    y = np.repeat([0.5, 0.9, 0.99], 8)
    test = PermutationTest(n_permutations=99, n_layers=3, random_state=0).fit(X, y)
    fig = plot_layer_pvalues(test, alpha=0.05)
    ax = fig.axes[0]
    values = ax.images[0].get_array()
    np.testing.assert_array_equal(
        values, test.layer_pvalues_adjusted_[[0, 0, 1], [1, 2, 2]].T
    )
    starred = [t.get_text().endswith("*") for t in ax.texts]
    assert starred == list((values <= 0.05).ravel())
    assert sum(starred) == 2  # layer 0 in "0.5 vs 0.99" and "0.9 vs 0.99"
    assert len(ax.patches) == 2
    assert fig.axes[1].get_ylabel() == "Westfall-Young adjusted p-value"
    assert ax.get_ylabel() == "layer (0: input)"
    with pytest.raises(ValueError, match="fitted with n_layers"):
        plot_layer_pvalues(PermutationTest(n_permutations=9).fit(X, y))


def test_plot_pvalues_annotates_every_cell(rng):
    X = rng.normal(size=(12, 3))
    X[8:] += 5
    test = PermutationTest(n_permutations=99, random_state=0).fit(X, [0, 1, 2] * 4)
    fig = plot_pvalues(test)
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == 9 and texts[0] == "—"
    assert texts[1] == f"{test.pvalues_[0, 1]:.3g}"
    np.testing.assert_array_equal(ax.images[0].get_array(), test.pvalues_)
    assert ax.get_xlabel() == "threshold" and ax.get_ylabel() == "threshold"
    # Every label contrasts with its cell: dark text on light cells and back.
    from matplotlib.colors import to_rgb

    image = ax.images[0]
    for text in ax.texts:
        i, j = (int(round(v)) for v in text.get_position()[::-1])
        cell = np.array(image.cmap(image.norm(test.pvalues_[i, j]))[:3])
        ink = np.array(to_rgb(text.get_color()))
        luminance = np.array([0.299, 0.587, 0.114])
        assert abs(cell @ luminance - ink @ luminance) > 0.4, (i, j)
    with pytest.raises(ValueError, match="fitted PermutationTest"):
        plot_pvalues(PermutationTest())


def test_plot_pvalues_writes_the_floor_as_a_bound_in_the_given_order(rng):
    # Ten clearly separated samples per stage: C(20, 10) relabelings, so 99
    # random ones (seeded) never match the data and p is at its floor, 1/100.
    y = np.repeat(STAGES, 10)
    X = rng.normal(size=(30, 3)) + 10 * np.repeat([[0], [1], [2]], 10, axis=0)
    test = PermutationTest(n_permutations=99, random_state=0).fit(X, y)
    assert test.pvalues_[0, 1] == 1 / 100  # precondition of the test
    fig = drawn(plot_pvalues(test, y_name="stage", order=y))
    ax = fig.axes[0]
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert ticks == STAGES == [t.get_text() for t in ax.get_xticklabels()]
    assert ax.get_xlabel() == "stage" and ax.get_ylabel() == "stage"
    off_diagonal = [t.get_text() for t in ax.texts if t.get_text() != "—"]
    assert off_diagonal == ["≤ 0.01"] * 6
    assert "99 permutations" in ax.get_title()
    assert_no_overlap(ax.get_xticklabels())
    with pytest.raises(ValueError, match="order: 'trained' is not a group of the test"):
        plot_pvalues(test, order=["trained"])


@pytest.mark.parametrize(
    "n_permutations, text",
    [
        (9_999, "1e-4"),
        (10_000, "1e-4"),  # 1/10001 < 1e-4
        (99_999, "1e-5"),
        (999, "0.001"),
        (99, "0.01"),
        (19, "0.05"),
        (2_999, "4e-4"),  # 1/3000 = 3.3e-4: rounded up, so that p ≤ text holds
        (1_999, "5e-4"),
    ],
)
def test_floor_text_is_a_true_upper_bound(n_permutations, text):
    floor = 1 / (n_permutations + 1)
    assert _floor_text(floor) == text
    assert floor <= float(text)


def all_texts(fig):
    """Every text a reader sees: titles, labels, ticks, legends, annotations."""
    drawn(fig)
    return [t.get_text() for t in fig.findobj(Text) if t.get_visible()]


def plots_of_learning_rates(rng):
    """Each plotting function on groups that are learning rates, not thresholds."""
    rates = np.repeat([0.001, 0.01, 0.1], 6)
    shape = (3, 1, 2, 6)
    X = rng.random((18, int(np.prod(shape))))
    X[12:, :12] += 3.0  # layer 0 of the largest rate moves
    test = PermutationTest(n_permutations=99, n_layers=3, random_state=0)
    test.fit(X, rates)
    projection = landscape_curve_projection(X, rates, shape)
    name = "learning rate"
    return {
        "plot_landscapes": plot_landscapes(X, rates, shape, y_name=name),
        "plot_landscape_curves": plot_landscape_curves(projection, y_name=name),
        "plot_complexity": plot_complexity(
            rng.random((18, 3)), rates, y_name=name, random_state=0
        ),
        "plot_pvalues": plot_pvalues(test, y_name=name),
        "plot_layer_pvalues": plot_layer_pvalues(test, y_name=name),
        "plot_training_complexity": plot_training_complexity(
            rng.random((2, 4, 3)), [0.001, 0.003, 0.01, 0.03], x_name=name
        ),
    }


def test_texts_name_what_is_plotted_not_thresholds(rng):
    for function, fig in plots_of_learning_rates(rng).items():
        texts = all_texts(fig)
        assert any("learning rate" in text for text in texts), function
        wrong = [t for t in texts if "threshold" in t or "training" in t]
        assert wrong == [], function
    xlabel = plots_of_learning_rates(rng)["plot_layer_pvalues"].axes[0].get_xlabel()
    assert xlabel == "pair of groups (learning rate)"


def test_complexity_and_layer_pvalues_take_layer_names(rng):
    names = ["input", "conv", "logits"]
    fig = plot_complexity(rng.random((6, 3)), [0, 0, 0, 1, 1, 1], layer_names=names)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == names
    assert ax.get_xlabel() == "layer"
    ax = plot_complexity(rng.random((6, 3)), [0, 0, 0, 1, 1, 1]).axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "2"]
    assert ax.get_xlabel() == "layer (0: input)"
    X = rng.normal(size=(12, 6))
    test = PermutationTest(n_permutations=9, n_layers=3, random_state=0)
    test.fit(X, [0, 1] * 6)
    ax = plot_layer_pvalues(test, layer_names=names).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == names
    assert ax.get_ylabel() == "layer"
    with pytest.raises(ValueError, match="layer_names has 2 names for 3 layers"):
        plot_complexity(rng.random((6, 3)), [0, 1] * 3, layer_names=names[:2])
    with pytest.raises(ValueError, match="layer_names has 4 names for 3 layers"):
        plot_layer_pvalues(test, layer_names=names + ["extra"])
    with pytest.raises(ValueError, match="layer_names must be a sequence"):
        plot_layer_pvalues(test, layer_names=3)


def test_figures_save_headless(tmp_path, rng):
    fig = plot_complexity(rng.random((4, 3)), [0, 0, 1, 1])
    fig.savefig(tmp_path / "complexity.png")
    assert (tmp_path / "complexity.png").stat().st_size > 1000


def test_many_landscape_levels_get_a_ramp_and_a_two_entry_legend(rng):
    X = rng.random((4, 2 * 1 * 22 * 10))
    fig = plot_landscapes(X, [0.9, 0.9, 0.5, 0.5], shape=(2, 1, 22, 10))
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == [
        "$\\lambda_{1}$",
        "$\\lambda_{22}$",
    ]
    assert legend.get_title().get_text() == "level (of 22)"
    assert len(fig.axes[0].lines) == 22
    FigureCanvasAgg(fig).draw()
    # The legend sits beside the axes, not over them.
    legend_box = legend.get_window_extent()
    for ax in fig.axes:
        assert not legend_box.overlaps(ax.get_window_extent())


def test_plot_activations_refuses_distance_cells(rng):
    cloud = rng.normal(size=(10, 3))
    with pytest.raises(ValueError, match="layer 1 is a LayerDistances"):
        plot_activations([cloud, LayerDistances.from_points(cloud)])


def test_plot_training_complexity_means_skip_stopped_networks():
    from sklandscapes.plotting import plot_training_complexity

    complexity = np.array(
        [
            [[1.0, 2.0], [3.0, 4.0]],
            [[3.0, 6.0], [np.nan, np.nan]],  # stopped after the first record
        ]
    )
    fig = plot_training_complexity(
        complexity, [5, 10], layer_names=["input", "logits"], band="range"
    )
    heat_ax, line_ax = fig.axes[:2]
    # Record 1: mean of both networks; record 2: of network 0 alone.
    np.testing.assert_array_equal(line_ax.lines[0].get_ydata(), [2.0, 3.0])
    np.testing.assert_array_equal(line_ax.lines[1].get_ydata(), [4.0, 4.0])
    np.testing.assert_array_equal(
        heat_ax.collections[0].get_array().reshape(2, 2), [[2.0, 3.0], [4.0, 4.0]]
    )
    assert line_ax.get_legend().get_title().get_text() == "layer"
    assert "min to max" in line_ax.get_title()
    assert line_ax.get_ylabel() == "topological complexity (landscape norm)"
    assert fig.axes[2].get_ylabel() == "mean complexity (landscape norm)"


def test_std_bands_of_norms_stop_at_zero():
    from sklandscapes.plotting import plot_training_complexity

    # One network far above the others: mean - std < 0 at every record,
    # where no norm lies. The last network stopped after 3 records (NaN).
    complexity = np.zeros((4, 5, 1))
    complexity[0] = 10.0
    complexity[3, 3:] = np.nan
    mean = np.nanmean(complexity, axis=0)[:, 0]
    std = np.nanstd(complexity, axis=0)[:, 0]
    fig = plot_training_complexity(complexity, band="std")
    band = fig.axes[1].collections[0].get_paths()[0].vertices[:, 1]
    assert band.min() == 0.0
    np.testing.assert_allclose(band.max(), (mean + std).max())
    assert fig.axes[1].get_title().endswith("across networks, cut at 0)")
    norms = np.r_[np.full((1, 3), 10.0), np.zeros((4, 3))]
    ax = plot_complexity(norms, np.zeros(5), band="std").axes[0]
    assert ax.collections[0].get_paths()[0].vertices[:, 1].min() == 0.0
    # Values that can be negative keep the whole band, and say nothing of 0.
    fig = plot_training_complexity(complexity - 5.0, band="std")
    band = fig.axes[1].collections[0].get_paths()[0].vertices[:, 1]
    np.testing.assert_allclose(band.min(), (mean - 5.0 - std).min())
    assert fig.axes[1].get_title().endswith("across networks)")
    ax = plot_complexity(norms - 5.0, np.zeros(5), band="std").axes[0]
    np.testing.assert_allclose(
        ax.collections[0].get_paths()[0].vertices[:, 1].min(), -3.0 - 4.0
    )
    assert legend_texts(ax.get_legend())[-1] == "mean ± 1 std"


def test_plot_training_complexity_draws_against_epochs_from_0():
    from sklandscapes.plotting import plot_training_complexity

    complexity = np.arange(12.0).reshape(4, 3)
    fig = plot_training_complexity(complexity)
    # Record i is epoch i: a monitor with every=1, the untrained network first.
    np.testing.assert_array_equal(fig.axes[1].lines[0].get_xdata(), [0, 1, 2, 3])
    assert fig.axes[0].get_xlabel() == fig.axes[1].get_xlabel() == "epoch"
    fig = plot_training_complexity(complexity, [0, 5, 10, 15])
    np.testing.assert_array_equal(fig.axes[1].lines[2].get_xdata(), [0, 5, 10, 15])
    np.testing.assert_array_equal(fig.axes[1].lines[2].get_ydata(), [2, 5, 8, 11])


def test_plot_training_complexity_against_accuracy_draws_points():
    from sklandscapes.plotting import plot_training_complexity

    complexity = np.array(
        [
            [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]],
            [[3.0, 6.0], [5.0, 8.0], [np.nan, np.nan]],  # stopped after record 2
        ]
    )
    # Network 1's accuracy at record 3 is not counted: it no longer trained.
    accuracy = np.array([[np.nan, 0.8, 0.65], [np.nan, 0.6, 0.1]])
    fig = plot_training_complexity(
        complexity, [0, 1, 2], accuracy=accuracy, band="range"
    )
    heat_ax, point_ax = fig.axes[:2]
    assert heat_ax.get_xlabel() == "epoch"  # the heat map stays in time order
    assert point_ax.get_xlabel() == "training accuracy"
    first = point_ax.lines[0]
    # No line joins the points: the accuracy went down, from 0.7 to 0.65.
    assert first.get_linestyle() == "None" and first.get_marker() == "o"
    # Epoch 0 has no accuracy and is left out; the others at the mean.
    np.testing.assert_allclose(first.get_xdata(), [0.7, 0.65])
    np.testing.assert_array_equal(first.get_ydata(), [4.0, 5.0])
    np.testing.assert_array_equal(point_ax.lines[1].get_ydata(), [6.0, 6.0])
    # One set of error bars per layer, min to max across the networks.
    segments = point_ax.collections[0].get_segments()
    np.testing.assert_array_equal(segments[0], [[0.7, 3.0], [0.7, 5.0]])
    assert "min to max" in point_ax.get_title()
    fig = plot_training_complexity(complexity[0], accuracy=[0.5, 0.4, 0.9])
    np.testing.assert_array_equal(fig.axes[1].lines[0].get_xdata(), [0.5, 0.4, 0.9])
    with pytest.raises(ValueError, match=r"accuracy must have shape \(3,\) or"):
        plot_training_complexity(complexity, accuracy=[0.5, 0.6])
    with pytest.raises(ValueError, match="accuracy has no finite value"):
        plot_training_complexity(complexity, accuracy=[np.nan] * 3)


def test_plot_training_complexity_bad_input():
    from sklandscapes.plotting import plot_training_complexity

    with pytest.raises(ValueError, match="strictly increasing.*accuracy="):
        plot_training_complexity(np.zeros((3, 2)), epochs=[0.5, 0.7, 0.6])

    with pytest.raises(ValueError, match="complexity must have shape"):
        plot_training_complexity(np.zeros(3))
    with pytest.raises(ValueError, match="one value per record \\(2\\)"):
        plot_training_complexity(np.zeros((2, 3)), epochs=[1, 2, 3])
    with pytest.raises(ValueError, match="layer_names has 1 names for 3 layers"):
        plot_training_complexity(np.zeros((2, 3)), layer_names=["a"])
    with pytest.raises(ValueError, match="at least one network with finite"):
        plot_training_complexity(np.full((2, 3), np.nan))
