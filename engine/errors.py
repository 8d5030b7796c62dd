"""Errors the engine raises for bad input; the CLI prints them as one line and exits 2."""

from collections.abc import Iterator
from contextlib import contextmanager


class NemodiffError(Exception):
    """Base class: the message is one line meant for the user."""


class CheckpointError(NemodiffError):
    """A checkpoint that is missing, corrupt, of the wrong type or shape."""


class RequestError(NemodiffError):
    """A generation request that cannot be served (bad mode, token counts, prompt)."""


def first_line(e: object) -> str:
    """The first line of an exception's (or a text's) message, for one-line errors."""
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__


@contextmanager
def kernels_clash_explained() -> Iterator[None]:
    """Around code that imports transformers' models: Hugging Face's `kernels` distribution has our
    kernels/ package's name, and a transformers that uses it then imports ours and fails deep inside
    with an ImportError; say what happened and what to do instead, in one line."""
    try:
        yield
    except ImportError as e:
        if "from 'kernels'" not in str(e):
            raise
        raise NemodiffError(
            "Hugging Face's `kernels` package is installed and shadows nemodiff's kernels/ package, "
            "so transformers cannot load models: pip uninstall kernels, or use transformers<5.25"
        ) from None
