"""The default keys as a real terminal sends them: the app runs in a detached tmux session (an
ESC-prefix terminal, as xterm, GNOME Terminal and macOS terminals are) and keys go in through
`tmux send-keys`; what it draws comes back through `capture-pane`. Skipped without tmux."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
ROOT = Path(__file__).resolve().parents[2]


class Tmux:
    """One tmux server of its own (never the user's), with the app in its only pane."""

    def __init__(self, socket: str):
        self.socket = socket

    def __call__(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-L", self.socket, *args], check=True, capture_output=True, text=True
        ).stdout

    def send(self, *keys: str) -> None:
        for key in keys:
            self("send-keys", "-t", "app", key)
            time.sleep(0.15)  # one key per read, as a person types

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "app")

    def wait_for(self, text: str, timeout: float = 30.0, present: bool = True) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if (text in screen) == present:
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{'no' if present else 'still'} {text!r} on the screen:\n{screen}")
            time.sleep(0.2)


def replay_position(screen: str) -> int:
    match = re.search(r"replay (\d+)/", screen)
    assert match, screen
    return int(match.group(1))


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    terminal = Tmux(f"nemodiff-test-{os.getpid()}")
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "TERM": "xterm-256color",
    }
    env.pop("TMUX", None)
    path = tmp_path / "fib.py"
    path.write_text("def fibonacci(n):\n")
    command = f"{sys.executable} -m tests.tui.fake_app {path}"
    subprocess.run(
        [
            "tmux",
            "-L",
            terminal.socket,
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "app",
            "-x",
            "100",
            "-y",
            "30",
            command,
        ],
        check=True,
        env=env,
        cwd=ROOT,
    )
    try:
        terminal.wait_for("Model demo ready", timeout=60)
        yield terminal
    finally:
        subprocess.run(["tmux", "-L", terminal.socket, "kill-server"], capture_output=True)


def test_default_keys_arrive_through_tmux(tmux: Tmux, tmp_path: Path):
    tmux.send("C-End")
    tmux.wait_for("Ln 2, Col 1")
    tmux.send("C-g")
    tmux.wait_for("suggestion 1/2")  # the greedy answer and a sampled one
    assert "n < 2" in tmux.screen()
    tmux.send("F8")
    screen = tmux.wait_for("suggestion 2/2")
    assert "n <= 1" in screen
    tmux.send("S-F8")
    tmux.wait_for("suggestion 1/2")
    tmux.send("Escape", "Escape")  # dismiss, then nothing: the editor keeps the keys
    tmux.wait_for("return n", present=False)
    tmux.send("x")
    tmux.wait_for("fib.py ●")
    tmux.send("F5", "F9")  # play, then pause and step on
    at = replay_position(tmux.wait_for("⏸"))
    tmux.send("F9", "S-F9", "S-F9")
    assert replay_position(tmux.wait_for(f"replay {at - 1}/")) == at - 1
    tmux.send("C-w")
    tmux.wait_for("unsaved changes")  # asks before closing the modified tab
    tmux.send("Escape")
    tmux.wait_for("unsaved changes", present=False)
    tmux.send("C-s")
    tmux.wait_for("Saved")
    assert (tmp_path / "fib.py").read_text() == "def fibonacci(n):\nx"
    tmux.send("C-Home", "M-w")  # tmux sends alt+w as such: it closes the saved tab, types no `w`
    tmux.wait_for("fib.py", present=False)
    assert (tmp_path / "fib.py").read_text() == "def fibonacci(n):\nx"
