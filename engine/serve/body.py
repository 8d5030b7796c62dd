"""Reading request bodies defensively: a size cap before and while reading, JSON, then types.

Every POST endpoint goes through `parse`, so oversized bodies get 413, malformed JSON 400 and
wrong types 422, each with a one-line message, whatever the endpoint.
"""

from __future__ import annotations

import dataclasses
import json
from functools import lru_cache
from typing import TypeVar, get_type_hints

from fastapi import HTTPException
from pydantic import TypeAdapter, ValidationError
from starlette.requests import Request as HTTPRequest

T = TypeVar("T")


async def read_json(client: HTTPRequest, max_body: int) -> object:
    """The decoded JSON body. Content-Length is checked first, and the bytes actually received
    too (a chunked body has no length, and a declared length can lie)."""
    too_big = HTTPException(413, f"request body is larger than {max_body} bytes")
    length = client.headers.get("content-length", "")
    if length.isdigit() and int(length) > max_body:
        raise too_big
    data = bytearray()
    async for chunk in client.stream():
        data += chunk
        if len(data) > max_body:
            raise too_big
    try:
        value = json.loads(data)
        json.dumps(value, ensure_ascii=False).encode()  # a lone surrogate ("\ud800") is no text
    except RecursionError:
        raise HTTPException(400, "malformed JSON body: nested too deeply") from None
    except UnicodeEncodeError:
        raise HTTPException(400, "malformed JSON body: a string holds a lone UTF-16 surrogate") from None
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError
        raise HTTPException(400, f"malformed JSON body: {e}") from None
    return value


def validate(data: object, shape: type[T]) -> T:
    """`data` as a `shape` (a pydantic model or a dataclass), or 422 naming the first bad field."""
    if (unknown := _unknown_field(data, shape)) is not None:  # pydantic drops them silently: a typo
        raise HTTPException(422, f"{unknown}: unknown field")  # such as config.max_tokens would be lost
    try:
        return _adapter(shape).validate_python(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
        raise HTTPException(422, f"{where}: {first['msg']}{more}") from None


def _unknown_field(data: object, shape: object) -> str | None:
    """The dotted name of the first key of `data` that the dataclass `shape` has no field for."""
    if not (dataclasses.is_dataclass(shape) and isinstance(shape, type) and isinstance(data, dict)):
        return None
    types = get_type_hints(shape)
    for key, value in data.items():
        if key not in types:
            return str(key)
        if (inner := _unknown_field(value, types[key])) is not None:
            return f"{key}.{inner}"
    return None


@lru_cache(maxsize=None)
def _adapter(shape: type) -> TypeAdapter:
    """Building an adapter compiles a validator: once per shape, not once per request."""
    return TypeAdapter(shape)


async def parse(client: HTTPRequest, max_body: int, shape: type[T]) -> T:
    return validate(await read_json(client, max_body), shape)
