"""The paper's MLP, as ``sklandscapes.nets`` has always exported it.

The module lives in :mod:`sklandscapes._mlp`, below the estimators, because
snapshot files (read by ``ActivationExtractor``) rebuild it.
"""

from sklandscapes._mlp import (  # noqa: F401
    ACTIVATIONS,
    MLP,
    check_widths,
    init_linear_,
    mlp_from_state_dict,
    resolve_activation,
)

__all__ = ["MLP"]
