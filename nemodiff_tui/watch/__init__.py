"""Watch mode: fill-in-the-middle suggestions for files saved by any editor (rules: docs/WATCH.md)."""

from engine.errors import RequestError


class WatchError(RequestError):
    """Watch mode cannot run as asked: a missing path, a bad marker, a file it will not read."""
