"""Reading request bodies defensively: a size cap before and while reading, JSON, then types.

Every POST endpoint goes through `parse`, so oversized bodies get 413, and malformed JSON, wrong
types and fields the endpoint does not serve get 400, each with a one-line message and the field
in `param`, whatever the endpoint. One policy for fields: a field is either served, or accepted
because it only tunes the server (declared in the body's shape, listed in docs/SERVING.md), or
refused by name, since ignoring it (grammar, min_p, a typo) would silently change the answer.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from functools import lru_cache
from typing import TypeVar, get_type_hints

from fastapi import HTTPException
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.requests import Request as HTTPRequest

T = TypeVar("T")


class FieldError(HTTPException):
    """A 400 about one request field, named in the error object's `param` (as OpenAI does)."""

    def __init__(self, param: str, message: str):
        super().__init__(400, message)
        self.param = param


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
    """`data` as a `shape` (a pydantic model or a dataclass), or 400 naming the fields it does not
    serve, else the first bad one."""
    if unknown := unknown_fields(data, shape):
        raise FieldError(
            unknown[0],
            f"unsupported field{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)} "
            "(this server does not implement them; see docs/SERVING.md)",
        )
    try:
        return _adapter(shape).validate_python(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = _param(data, first["loc"], missing=first["type"] == "missing")
        more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
        raise FieldError(where, f"{where}: {first['msg']}{more}") from None


def _param(data: object, loc: tuple, missing: bool) -> str:
    """The dotted path of an error's field: the steps of pydantic's `loc` that index into the data
    (its other steps name union members, such as `prompt.str`), then a missing field's name."""
    path = []
    for i, step in enumerate(loc):
        if isinstance(data, dict) and step in data or isinstance(data, list) and isinstance(step, int):
            path.append(str(step))
            data = data[step]
        elif missing and i == len(loc) - 1:
            path.append(str(step))
        else:
            break
    return ".".join(path) or "body"


def unknown_fields(data: object, shape: object) -> list[str]:
    """The dotted names of the keys in `data` (nested ones too) that `shape` has no field for."""
    if isinstance(data, list) and typing.get_origin(shape) is list:
        item_shape = typing.get_args(shape)[0]
        return [f"{i}.{name}" for i, item in enumerate(data) for name in unknown_fields(item, item_shape)]
    if isinstance(shape, types.UnionType) or typing.get_origin(shape) is typing.Union:
        options = [
            o for o in typing.get_args(shape) if _fields(o) is not None or typing.get_origin(o) is list
        ]
        found = [unknown_fields(data, option) for option in options]
        return min(found, key=len) if found else []  # judged by the option that fits best
    fields = _fields(shape)
    if fields is None or not isinstance(data, dict):
        return []
    unknown = []
    for key, value in data.items():
        if key not in fields:
            unknown.append(str(key))
        else:
            unknown += [f"{key}.{name}" for name in unknown_fields(value, fields[key])]
    return unknown


def _fields(shape: object) -> dict[str, object] | None:
    """A dataclass's or pydantic model's fields and their types; None for other types."""
    if isinstance(shape, type) and issubclass(shape, BaseModel):
        return {name: field.annotation for name, field in shape.model_fields.items()}
    if isinstance(shape, type) and dataclasses.is_dataclass(shape):
        return get_type_hints(shape)
    return None


@lru_cache(maxsize=None)
def _adapter(shape: type) -> TypeAdapter:
    """Building an adapter compiles a validator: once per shape, not once per request."""
    return TypeAdapter(shape)


async def parse(client: HTTPRequest, max_body: int, shape: type[T]) -> T:
    return validate(await read_json(client, max_body), shape)
