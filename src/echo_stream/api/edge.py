"""Validation at the edge: client keys, body size and the request's shape."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from fastapi import Request
from pydantic import BaseModel, ValidationError

from echo_stream.errors import InvalidRequest, PayloadTooLarge, Unauthorized
from echo_stream.protocol import ChatCompletionRequest

BodyModel = TypeVar("BodyModel", bound=BaseModel)


def bearer_token(request: Request) -> str | None:
    """The key the client presented (`Authorization: Bearer ...`), if any."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def key_matches(presented: str | None, keys: tuple[str, ...]) -> bool:
    """Compare against every key in constant time, so timing reveals neither key nor position."""
    candidate = (presented or "").encode()
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(candidate, key.encode())
    return matched and presented is not None


def require_key(request: Request, keys: tuple[str, ...]) -> str | None:
    """The presented key, after checking it when the API is protected."""
    presented = bearer_token(request)
    if keys and not key_matches(presented, keys):
        if presented:
            raise Unauthorized("Incorrect API key provided")
        raise Unauthorized("Missing API key: send 'Authorization: Bearer <key>'")
    return presented


def require_admin(request: Request, what: str) -> None:
    """Refuse unless the request carries an admin key (and admin keys are configured)."""
    admin_keys: tuple[str, ...] = request.app.state.echo.admin_keys
    if not admin_keys:
        raise Unauthorized(f"Admin endpoints are off: set ECHO_ADMIN_KEYS to enable {what}")
    if not key_matches(bearer_token(request), admin_keys):
        raise Unauthorized(f"An admin key is required for {what}")


def lazy_base_url(request: Request) -> Callable[[], str]:
    """The gateway's base URL as seen by this request, built only if called (`ads.links`)."""
    return lambda: str(request.base_url)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing anything over `limit` bytes before reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"Request body is larger than the {limit}-byte limit")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"Request body is larger than the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object, or a 400 saying why it is not one."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The request body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidRequest("The request body must be a JSON object")
    return data


def validate(model: type[BodyModel], data: dict[str, Any]) -> BodyModel:
    """`data` as `model`, or a 400 naming the first bad or missing field (`param`)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        param = ".".join(str(part) for part in error["loc"]) or None
        if error["type"] == "missing":
            raise InvalidRequest(f"Missing required parameter: '{param}'", param=param) from exc
        raise InvalidRequest(f"Invalid value for '{param}': {error['msg']}", param=param) from exc


def parse_body(model: type[BodyModel], body: bytes) -> BodyModel:
    """A JSON request body validated into `model`, with OpenAI-style 400 errors."""
    return validate(model, json_object(body))


def parse_chat_request(body: bytes) -> ChatCompletionRequest:
    """Parse and validate a chat completion request, with OpenAI-style 400 errors."""
    return parse_body(ChatCompletionRequest, body)
