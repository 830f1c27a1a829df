"""Activation landscapes: persistent homology of neural-network activations.

The topological core imports without PyTorch; the torch side lives in
:mod:`sklandscapes.nets` and :class:`ActivationExtractor`.
"""

from sklandscapes._distances import LayerDistances
from sklandscapes.activations import (
    ActivationExtractor,
    activation_layers,
    paper_centering,
    relu_layers,
)
from sklandscapes.kernels import LandscapeKernel
from sklandscapes.landscapes import LandscapeVectorizer, reshape_landscapes
from sklandscapes.normalization import ActivationNormalizer
from sklandscapes.persistence import RipsPersistence
from sklandscapes.stats import PermutationTest

__version__ = "0.1.0.dev0"

__all__ = [
    "ActivationExtractor",
    "ActivationNormalizer",
    "LandscapeKernel",
    "LandscapeVectorizer",
    "LayerDistances",
    "PermutationTest",
    "RipsPersistence",
    "activation_layers",
    "paper_centering",
    "relu_layers",
    "reshape_landscapes",
    "__version__",
]
