"""Behaviour shared by the stateless steps of the pipeline."""

__all__ = ["StatelessTransformerMixin"]


class StatelessTransformerMixin:
    """For steps that learn nothing and take ragged (non-matrix) input.

    ``fit`` only validates, so ``transform`` works without it, and
    scikit-learn's tags say that the input is not a 2-D feature matrix.
    """

    def __sklearn_is_fitted__(self):
        return True

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.two_d_array = False
        return tags
