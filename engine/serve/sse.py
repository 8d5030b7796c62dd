"""Server-sent events: the framing both streaming endpoints (/v1/completions, /v1/denoise) use."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from fastapi.responses import StreamingResponse

DONE = "[DONE]"  # OpenAI's end-of-stream marker, sent verbatim
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # no buffering by proxies


def frame(data: object) -> str:
    """One event: a `data:` line with the JSON (or the `[DONE]` marker) and a blank line."""
    return f"data: {DONE if data == DONE else json.dumps(data)}\n\n"


def response(frames: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(frames, media_type="text/event-stream", headers=HEADERS)
