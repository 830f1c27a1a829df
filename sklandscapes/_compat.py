"""The scikit-learn internals that sklandscapes relies on, imported in one place.

scikit-learn keeps parameter validation in private modules; if one of these
names moves in a future release, this file is the only one to change.
"""

from sklearn.base import _fit_context
from sklearn.utils._param_validation import (
    HasMethods,
    Interval,
    Options,
    StrOptions,
    validate_params,
)
from sklearn.utils.parallel import Parallel, delayed

__all__ = [
    "HasMethods",
    "Interval",
    "Options",
    "Parallel",
    "StrOptions",
    "_fit_context",
    "delayed",
    "validate_params",
]
