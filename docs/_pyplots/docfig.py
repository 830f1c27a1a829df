"""Helpers for the figures that the documentation draws at build time.

The plot directive saves the figures that pyplot manages. Our plotting
functions build :class:`matplotlib.figure.Figure` objects without pyplot (so
that they work in threads and headless), hence :func:`show`, which hands such a
figure to pyplot. :func:`tiny_experiment` runs a small configuration of the
digits experiment once per build and shares it between pages.
"""

import functools
import tempfile

import matplotlib.pyplot as plt
from matplotlib._pylab_helpers import Gcf
from matplotlib.backends.backend_agg import FigureCanvasAgg


def show(fig):
    """Register a Figure built without pyplot, so the plot directive saves it."""
    number = max(plt.get_fignums(), default=0) + 1
    manager = FigureCanvasAgg.new_manager(fig, number)
    # What pyplot.figure does for its own managers; Gcf.destroy undoes it.
    manager._cidgcf = manager.canvas.mpl_connect(
        "button_press_event", lambda event: Gcf.set_active(manager)
    )
    Gcf.set_active(manager)
    return fig


@functools.cache
def tiny_experiment():
    """The digits experiment, shrunk to a few seconds: 6 networks, 150 digits."""
    import torch

    from sklandscapes.experiments import make_config, run_experiment

    # These networks are tiny: one thread is fastest, and much faster than
    # several when other programs keep the cores busy.
    torch.set_num_threads(1)

    config = make_config(
        "digits",
        "fast",
        # 6 networks: the smallest exact p-value with the network as the
        # unit is 2 / 2**6 = 0.031, so pairs can differ at the 0.05 level.
        n_networks=6,
        thresholds=(0.5, 0.8, 0.95),
        n_inputs=150,
        n_subsamples=2,
        n_permutations=999,
    )
    with tempfile.TemporaryDirectory() as out:
        result = run_experiment(config, out, device="cpu", verbose=0)
    # run_experiment wrote its own figures to `out`; the pages draw theirs.
    plt.close("all")
    return result
