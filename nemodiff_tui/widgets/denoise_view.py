"""The live denoising view: the current block as a grid of token cells, and the generation's counters.

A GPU denoises a block in milliseconds, so the view keeps the last generation's frames and
replays them: step back and forth, or play them in slow motion. Colours come from the theme's
`nd-*` variables through the component classes below.
"""

from __future__ import annotations

import unicodedata

from rich.text import Text
from textual.binding import Binding
from textual.timer import Timer
from textual.widget import Widget

from engine.events import MASKED, Step
from nemodiff_tui.trace import Frame, Trace

CELL_WIDTH = 7  # characters of token text per cell (one more separates cells)
LOW_CONFIDENCE = 0.5  # a slot committed below this confidence is marked
KINDS = (
    "masked",
    "guess",
    "committed-now",
    "committed",
    "low-confidence",
    "drafted",
    "copied",
    "accepted",
    "copy-accepted",
    "rejected",
)
LEGEND = {
    "diffusion": ("masked", "guess", "committed-now", "committed", "low-confidence"),
    "speculative": ("committed", "drafted", "copied", "accepted", "copy-accepted", "rejected"),
}


def cell_kinds(step: Step) -> list[str]:
    """The state of every slot of a step, one of `KINDS`."""
    n = len(step.tokens)
    copied = step.copied or 0  # drafted slots 1..copied came from a copy of the context
    if step.kind == "draft":
        return ["committed"] + ["copied" if i <= copied else "drafted" for i in range(1, n)]
    if step.kind in ("verify", "quadratic"):
        ok = step.accepted or 0
        return ["committed"] + [
            ("copy-accepted" if i <= copied else "accepted") if i < ok else "rejected" for i in range(1, n)
        ]
    kinds = []
    for i in range(n):
        if not step.committed[i]:
            kinds.append("masked" if step.tokens[i] == MASKED else "guess")
        elif step.confidence[i] < LOW_CONFIDENCE:
            kinds.append("low-confidence")
        else:
            now = step.commit_step[i] == step.step or step.kind in ("prefill", "ar")
            kinds.append("committed-now" if now else "committed")
    return kinds


def cell_text(text: str, masked: bool) -> str:
    """A token's text made visible in one fixed-width cell (newline, tab and space get symbols)."""
    if masked:
        return "·".center(CELL_WIDTH)
    shown = (
        "".join(
            "⏎"
            if c == "\n"
            else "⇥"
            if c == "\t"
            else "␣"
            if c == " "
            else "�"
            if unicodedata.category(c)[0] == "C"
            else c
            for c in text
        )
        or "∅"
    )
    if len(shown) > CELL_WIDTH:
        shown = shown[: CELL_WIDTH - 1] + "…"
    return shown.ljust(CELL_WIDTH)


def end_reason(trace: Trace) -> str:
    """How a generation stands, in words: a stop rule's cut is no cancellation."""
    if trace.done is None:
        return "live"
    return "done: stop rule" if trace.stopped else f"done: {trace.done.stop_reason}"


class DenoiseView(Widget, can_focus=True):
    """Shows the frame a `Trace` is at: the latest one live, or any one in replay."""

    COMPONENT_CLASSES = {f"denoise--{kind}" for kind in KINDS} | {"denoise--label"}
    BINDINGS = [
        Binding("left", "step(-1)", "Step back", show=True),
        Binding("right", "step(1)", "Step on", show=True),
        Binding("space", "play", "Play/pause"),
        Binding("home", "jump(0)", "First step", show=False),
        Binding("end", "jump(-1)", "Last step", show=False),
        Binding("escape,tab", "app.focus_editor", "Back to the editor"),
    ]

    def __init__(self, fps: float = 4.0, id: str | None = None):
        super().__init__(id=id)
        self.fps = fps
        self.trace: Trace | None = None
        self.index: int | None = None  # replay position; None follows the trace live
        self._player: Timer | None = None
        self._previous: Trace | None = None  # shown until `trace` has its first frame

    @property
    def playing(self) -> bool:
        return self._player is not None

    @property
    def shown(self) -> Trace | None:
        """The trace on screen: the followed one, or the one before it until it has a frame (no
        flash of an empty panel at every request)."""
        return self.trace if self.trace is not None and self.trace.frames else self._previous

    @property
    def frame(self) -> Frame | None:
        trace = self.shown
        if trace is None or not trace.frames:
            return None
        return trace.frames[-1 if self.index is None or trace is not self.trace else self.index]

    def follow(self, trace: Trace) -> None:
        """Show `trace` live from now on (stops a replay)."""
        if trace is self.trace:
            return
        self._pause()
        if self.trace is not None and self.trace.frames:
            self._previous = self.trace
        self.trace, self.index = trace, None
        self.refresh()

    def action_play(self) -> None:
        """Play the frames in slow motion from the start (or from where a paused replay stands)."""
        if self.playing:
            self._pause()
            return
        if self.trace is None or not self.trace.frames:
            self.notify("Nothing to replay yet: no generation has run", severity="warning")
            return
        if self.index is None or self.index >= len(self.trace.frames) - 1:
            self.index = 0
        self._player = self.set_interval(1 / self.fps, self._advance)
        self.refresh()

    def action_step(self, delta: int) -> None:
        self._pause()
        if self.trace is not None and self.trace.frames:
            last = len(self.trace.frames) - 1
            self.index = min(max((last if self.index is None else self.index) + delta, 0), last)
        self.refresh()

    def action_jump(self, index: int) -> None:
        """Go to frame `index` (-1: the last)."""
        self._pause()
        if self.trace is not None and self.trace.frames:
            self.index = index % len(self.trace.frames)
        self.refresh()

    def _advance(self) -> None:
        assert self.trace is not None and self.index is not None
        if self.index >= len(self.trace.frames) - 1:
            self._pause()
        else:
            self.index += 1
        self.refresh()

    def _pause(self) -> None:
        if self._player is not None:
            self._player.stop()
            self._player = None

    # --- rendering ------------------------------------------------------------------------------

    def render(self) -> Text:
        frame = self.frame
        if frame is None:
            return Text(
                "No generation yet: type, pause, and the denoising shows here (f5 replays it).",
                style=self.get_component_rich_style("denoise--label"),
            )
        return Text("\n").join([self._stats(frame), *self._grid(frame), self._legend(frame)])

    def _stats(self, frame: Frame) -> Text:
        trace = self.shown
        assert trace is not None
        step, label = frame.step, self.get_component_rich_style("denoise--label")
        seconds = step.elapsed or 1e-9
        total = len(trace.frames)
        if trace is not self.trace:
            state = ("", "done · the next one is starting")
        elif self.index is None:
            state = ("", end_reason(trace))
        else:
            state = ("replay", f"{self.index + 1}/{total} {'▶' if self.playing else '⏸'}")
        # What is shown and where it stands first: a narrow panel cuts the counters, not those.
        fields = [
            ("", trace.label),
            state,
            ("mode", trace.mode),
            ("block", str(step.block)),
            ("step", f"{step.step} {step.kind}"),
            ("NFE", str(step.nfe)),
            ("tok/fwd", f"{frame.n_tokens / max(step.nfe, 1):.2f}"),
            ("tok/s", f"{frame.n_tokens / seconds:.1f}"),
        ]
        if frame.accepted:
            recent = " ".join(map(str, frame.accepted[-8:]))
            fields.append(("accepted", f"{recent} · mean {sum(frame.accepted) / len(frame.accepted):.2f}"))
        if frame.copies[1]:
            fields.append(("copies", f"{frame.copies[0]}/{frame.copies[1]} accepted"))
        text = Text()
        for name, value in fields:
            if name:
                text.append(f"{name} ", label)
            text.append(f"{value}  ")
        return text

    def _grid(self, frame: Frame) -> list[Text]:
        per_row = max(1, (self.size.width + 1) // (CELL_WIDTH + 1))
        styles = {kind: self.get_component_rich_style(f"denoise--{kind}") for kind in KINDS}
        kinds = cell_kinds(frame.step)
        rows: list[Text] = []
        for start in range(0, len(kinds), per_row):
            row = Text()
            for i in range(start, min(start + per_row, len(kinds))):
                if i > start:
                    row.append(" ")
                text = frame.texts[i] if i < len(frame.texts) else ""
                row.append(cell_text(text, kinds[i] == "masked"), styles[kinds[i]])
            rows.append(row)
        return rows

    def _legend(self, frame: Frame) -> Text:
        names = LEGEND["speculative" if frame.step.kind in ("draft", "verify", "quadratic") else "diffusion"]
        text = Text()
        for name in names:
            text.append(f" {name} ", self.get_component_rich_style(f"denoise--{name}"))
            text.append(" ")
        return text
