"""
Beyond MLPs: a convolutional network on the digits
===================================================

Nothing in the pipeline is specific to MLPs. A small convolutional network
learns scikit-learn's 8 x 8 digits as an ordinary skorch classifier, and
:class:`~sklandscapes.ActivationExtractor` with its automatic layer choice
(``layers="auto"``) takes, for each ``Conv2d -> ReLU -> MaxPool2d`` block, the
ReLU feature maps and the pooled maps, then the logits; each image's maps are
flattened to one point (a ``(C, H, W)`` map becomes a point of R^(C*H*W)).
:func:`~sklandscapes.activation_layers` lists them.

A :class:`~sklandscapes.nets.TopologicalComplexity` callback watches the
topological complexity of these layers during training (local homology, as
in the paper's digits experiment), and after training the activation
landscapes of the untrained and the trained network are compared layer by
layer.

In this run (the printed tables have the numbers; epoch 0 is the untrained
network), the network already reaches 0.85 training accuracy after the first
two epochs, so much of the change happens before the second record. From the
untrained network to
the trained one (0.97), the complexity of the feature maps grows (first
block 0.011 to 0.013, second block 0.013 to 0.016) while the pooled maps
change less, and the logits' complexity rises most (0.068 to 0.085): in the
landscape grid (columns are the layers in the order above) the logits'
first landscape roughly doubles its peak. The logits' complexity is highest
around epoch 6 and falls a little afterwards.
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless-safe: the figures go to files
import copy

import numpy as np
import torch
from skorch import NeuralNetClassifier
from torch import nn

from sklandscapes import (
    ActivationExtractor,
    ActivationNormalizer,
    LandscapeVectorizer,
    RipsPersistence,
    activation_layers,
    relu_layers,
)
from sklandscapes.datasets import load_digits
from sklandscapes.nets import (
    TopologicalComplexity,
    history_complexity,
    torch_threads,
    train_accuracy_scoring,
)
from sklandscapes.plotting import plot_landscapes, plot_training_complexity
from sklandscapes.stats import topological_complexity


class DigitsCNN(nn.Module):
    """Two convolutional blocks and a linear read-out, for 1 x 8 x 8 images."""

    def __init__(self, channels=(8, 16)):
        super().__init__()
        first, second = channels
        self.features = nn.Sequential(
            nn.Conv2d(1, first, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(first, second, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(second * 4, 10))

    def forward(self, x):
        return self.classifier(self.features(x))


def main(argv=None):
    # sphinx-gallery, which runs the examples for the docs, empties __doc__.
    description = __doc__.split("\n\n")[1] if __doc__ else None
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--max-epochs", type=int, default=12)
    parser.add_argument("--every", type=int, default=2, help="epochs between records")
    parser.add_argument(
        "--n-points", type=int, default=200, help="images of the monitor's batch"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("sklandscapes-out"))
    args = parser.parse_args(argv)
    return run(args)


def run(args):
    # A small network: one torch thread is fastest, and the figures then do
    # not depend on how many cores are free; torch_threads() gives back the
    # count from before when the block ends.
    with torch_threads():
        return _run(args)


def _run(args):
    torch.manual_seed(args.seed)
    X, y = load_digits()
    images = X.reshape(-1, 1, 8, 8)
    rng = np.random.default_rng(args.seed)
    batch = images[np.sort(rng.choice(len(images), args.n_points, replace=False))]

    module = DigitsCNN()
    untrained = copy.deepcopy(module)
    # Local homology as in the paper's digits experiment: normalized to median
    # norm 1, landscapes on [0, 2], ReLU layers (and their pooling) uncentered.
    monitor = TopologicalComplexity(
        batch, every=args.every, method="local", sample_range=(0.0, 2.0)
    )
    net = NeuralNetClassifier(
        module,
        criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.Adam,
        lr=3e-3,
        batch_size=64,
        max_epochs=args.max_epochs,
        train_split=None,
        iterator_train__shuffle=True,
        iterator_train__generator=torch.Generator().manual_seed(args.seed),
        callbacks=[("train_acc", train_accuracy_scoring()), monitor],
        device="cpu",
        verbose=0,
    )
    net.fit(images, y)

    names = ["input", *activation_layers(net.module_, batch[:2])]
    print("Layers taken by layers='auto':", names)
    epochs, complexity = history_complexity(net.history)
    accuracy = net.history[:, "train_acc"]
    print("epoch  accuracy  " + "".join(f"{name:>14}" for name in names))
    for epoch, row in zip(epochs, complexity):
        cells = "".join(f"{value:14.4f}" for value in row)
        # Epoch 0, the untrained network: skorch measures no accuracy there.
        measured = f"{accuracy[epoch - 1]:8.3f}" if epoch else f"{'-':>8}"
        print(f"{epoch:5d}  {measured}  {cells}")

    # The same pipeline, on the untrained and the trained network.
    center = ~relu_layers(net.module_, batch)
    clouds = ActivationExtractor(inputs=batch).fit_transform([untrained, net.module_])
    diagrams = RipsPersistence(local=True).fit_transform(
        ActivationNormalizer(method="local", center=center).fit_transform(clouds)
    )
    before, after = topological_complexity(diagrams, (0.0, 2.0))
    print("untrained:", np.round(before, 4))
    print("trained:  ", np.round(after, 4))
    vectorizer = LandscapeVectorizer(n_landscapes=3, sample_range=(0.0, 2.0))
    landscapes = vectorizer.fit_transform(diagrams)

    args.out.mkdir(parents=True, exist_ok=True)
    fig = plot_training_complexity(complexity, epochs, layer_names=names, band=None)
    fig.suptitle("A CNN learning the 8 x 8 digits: local H1 complexity per layer")
    fig.savefig(args.out / "cnn_dynamics.png", dpi=110)
    fig = plot_landscapes(
        landscapes,
        ["untrained", f"trained ({accuracy[-1]:.2f})"],
        vectorizer.shape_,
        grid=vectorizer.grid_,
        y_name="network",
        layer_names=names,
        title="Activation landscapes (H1, local) of a CNN's layers",
    )
    fig.savefig(args.out / "cnn_landscapes.png", dpi=110)
    print(f"Figures written to {args.out}")
    return complexity, after


if __name__ == "__main__":
    main()
