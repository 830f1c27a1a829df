"""Warnings and errors raised by sklandscapes."""

__all__ = ["SklandscapesWarning", "GridWarning"]


class SklandscapesWarning(UserWarning):
    """Base class of every warning that sklandscapes emits."""


class GridWarning(SklandscapesWarning):
    """A landscape grid could not be learned as asked and a fallback was used."""
