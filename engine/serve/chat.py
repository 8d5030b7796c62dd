"""OpenAI's `POST /v1/chat/completions`, for the chat and instruction features of editor
assistants (Continue, llama.vim's instruct edits): the conversation is rendered with the
checkpoint's own chat template (`Request.messages`) and generated in the server's mode, so
diffusion and self-speculation serve chat as they serve completion. A checkpoint without a chat
template (the demo model) is refused with a 400 that says so."""

from __future__ import annotations

import time
import uuid

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel
from starlette.requests import Request as HTTPRequest

from engine.request import Request
from engine.serve.body import FieldError, parse
from engine.serve.openai import Options, answer
from engine.serve.queue import EngineQueue

MAX_TOKENS = 512  # default answer length, at most half the context window


class Part(BaseModel):
    """One part of a message's content: only text is served."""

    type: str
    text: str | None = None


class Message(BaseModel):
    role: str
    content: str | list[Part] | None = None
    name: str | None = None  # a participant's name: templates ignore it, so it changes nothing


class ChatBody(Options):
    messages: list[Message]
    max_completion_tokens: int | None = None  # OpenAI's newer name for max_tokens
    logprobs: bool | None = None  # refused when true
    top_logprobs: int | None = None


def text_of(message: Message, index: int) -> str:
    if not isinstance(message.content, list):
        return message.content or ""
    for part in message.content:
        if part.type != "text":
            raise FieldError(
                f"messages.{index}.content",
                f"messages.{index}.content: {part.type!r} parts are not supported by this server, only text",
            )
    return "".join(part.text or "" for part in message.content)


def to_request(body: ChatBody, mode: str, window: int) -> Request:
    if body.logprobs or body.top_logprobs:
        raise FieldError("logprobs", "logprobs is not supported by this server")
    if not body.messages:
        raise FieldError("messages", "messages: give at least one message")
    default = (
        min(MAX_TOKENS, window // 2) if body.max_completion_tokens is None else body.max_completion_tokens
    )
    messages = [{"role": m.role, "content": text_of(m, i)} for i, m in enumerate(body.messages)]
    return Request(messages=messages, config=body.config(mode, max_tokens=default))


def routes(queue: EngineQueue, mode: str, max_body: int) -> APIRouter:
    router = APIRouter()
    model = queue.engine.name

    @router.post("/v1/chat/completions")
    async def chat(client: HTTPRequest) -> Response:
        body = await parse(client, max_body, ChatBody)
        job = queue.submit(to_request(body, mode, queue.engine.context_window))
        cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        first = True

        def chunk(text: str, reason: str | None) -> dict:
            nonlocal first
            delta = {"role": "assistant", "content": text} if first else {"content": text} if text else {}
            first = False
            return {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}],
            }

        def whole(text: str, reason: str | None) -> dict:
            return {
                "id": cid,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "logprobs": None,
                        "finish_reason": reason,
                    }
                ],
            }

        return await answer(job, client, body, chunk, whole)

    return router
