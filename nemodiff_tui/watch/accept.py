"""Accepting a suggestion: the only way watch mode ever writes a file.

The file is read again and its sha256 compared with the one the suggestion was computed from.
Only when they are equal is the new text written, atomically (`files.atomic_write`: a temporary
file in the same folder, fsync, rename over the file, the file's mode kept), so a crash or a full
disk leaves the original intact. When the file changed meanwhile (the user saved again) nothing is
written and the suggestion is stale. The check and the rename are a few milliseconds apart: a save
landing in exactly that window is the one case this cannot see.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from nemodiff_tui.files import atomic_write, disk_state
from nemodiff_tui.watch.suggestions import Suggestion


@dataclass(frozen=True)
class Outcome:
    status: Literal["accepted", "stale", "missing"]
    text: str = ""  # the file's new text, when accepted
    sha256: str = ""  # of the new text's bytes, when accepted


def accept_suggestion(s: Suggestion) -> Outcome:
    """Write `s` into its file if the file still holds exactly `s.source`; otherwise mark `s` stale."""
    disk = disk_state(s.path)
    if disk is None or disk.sha256 != s.sha256:
        s.status = "stale"
        return Outcome("missing" if disk is None else "stale")
    text = s.edited()
    written = atomic_write(s.path, text)
    s.status = "accepted"
    return Outcome("accepted", text, written.sha256)
