"""Errors the engine raises for bad input; the CLI prints them as one line and exits 2."""


class NemodiffError(Exception):
    """Base class: the message is one line meant for the user."""


class CheckpointError(NemodiffError):
    """A checkpoint that is missing, corrupt, of the wrong type or shape."""


class RequestError(NemodiffError):
    """A generation request that cannot be served (bad mode, token counts, prompt)."""
