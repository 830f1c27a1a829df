import numpy as np
import pytest

pytest.importorskip("matplotlib")

from sklandscapes import PermutationTest  # noqa: E402
from sklandscapes.plotting import (  # noqa: E402
    plot_activations,
    plot_complexity,
    plot_landscape_curves,
    plot_landscapes,
    plot_pvalues,
)
from sklandscapes.stats import landscape_curve_projection  # noqa: E402


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
    with pytest.raises(ValueError, match="layer 5 does not exist; there are 3"):
        plot_activations(layers, layers=[5])


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
    assert fig.axes[0].get_ylabel() == "1.0"
    assert fig.axes[1].get_title() == "layer 2"
    with pytest.raises(ValueError, match="0.7 is not a label of y"):
        plot_landscapes(X, y, shape, groups=[0.7])


def test_plot_landscape_curves(rng):
    X = rng.random((6, 4 * 1 * 1 * 5))
    projection = landscape_curve_projection(X, [0, 0, 1, 1, 2, 2], (4, 1, 1, 5))
    fig = plot_landscape_curves(projection)
    ax = fig.axes[0]
    assert len(ax.lines) == 3
    np.testing.assert_allclose(ax.lines[2].get_xdata(), projection.coordinates[2, :, 0])
    assert len(ax.texts) == 3 * 4  # every layer numbered
    assert ax.get_xlabel().startswith("PC 1")
    with pytest.raises(ValueError, match="must be a CurveProjection"):
        plot_landscape_curves(np.zeros((2, 3, 2)))


def test_plot_complexity_lines_and_bands(rng):
    norms = rng.random((9, 11))
    y = np.repeat([0.5, 0.9, 1.0], 3)
    fig = plot_complexity(norms, y)
    ax = fig.axes[0]
    assert len(ax.lines) == 3 and len(ax.collections) == 3
    np.testing.assert_allclose(ax.lines[1].get_ydata(), norms[3:6].mean(0))
    assert ax.get_xlabel() == "layer" and ax.get_ylabel() == "landscape norm"
    # The band reaches above the highest mean.
    assert ax.get_ylim()[1] > norms[3:6].mean(0).max()
    assert len(plot_complexity(norms, y, band=None).axes[0].collections) == 0
    with pytest.raises(ValueError, match="band must be"):
        plot_complexity(norms, y, band="minmax")


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


def test_figures_save_headless(tmp_path, rng):
    fig = plot_complexity(rng.random((4, 3)), [0, 0, 1, 1])
    fig.savefig(tmp_path / "complexity.png")
    assert (tmp_path / "complexity.png").stat().st_size > 1000
