"""Behaviour shared by the stateless steps of the pipeline."""

__all__ = ["StatelessTransformerMixin"]

_OUTPUT_CONTAINERS = ("default", "pandas", "polars")


class StatelessTransformerMixin:
    """For steps that learn nothing and take ragged (non-matrix) input.

    ``fit`` only validates, so ``transform`` works without it, and
    scikit-learn's tags say that the input is not a 2-D feature matrix.

    Their output is ragged too (an object array of clouds or diagrams), which
    no DataFrame can hold: scikit-learn's automatic wrapping of ``transform``
    in a pandas or polars container is switched off, and :meth:`set_output`
    accepts every container and leaves the output as it is, so that
    ``Pipeline.set_output(transform="pandas")`` and
    ``sklearn.config_context(transform_output="pandas")`` reach the first step
    that outputs a feature matrix.
    """

    def __init_subclass__(cls, **kwargs):
        # TransformerMixin would wrap transform in a DataFrame under
        # set_output or the global transform_output setting; a container of
        # clouds or diagrams is not a table.
        kwargs.setdefault("auto_wrap_output_keys", None)
        super().__init_subclass__(**kwargs)

    def __sklearn_is_fitted__(self):
        return True

    def set_output(self, *, transform=None):
        """Accept an output container; the ragged output stays as it is.

        Parameters
        ----------
        transform : {"default", "pandas", "polars"}, default=None
            Accepted so that a ``Pipeline`` can pass it on. The output of this
            step is an object array of clouds or diagrams, which cannot be a
            DataFrame, so it is returned unchanged whatever the value; the
            steps after it that output a feature matrix follow the setting.

        Returns
        -------
        self : estimator instance
        """
        if transform is not None and transform not in _OUTPUT_CONTAINERS:
            raise ValueError(
                f"transform must be one of {_OUTPUT_CONTAINERS!r} or None, got "
                f"{transform!r}."
            )
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.two_d_array = False
        return tags
