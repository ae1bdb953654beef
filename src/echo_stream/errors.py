"""Typed errors, translated to OpenAI's error shape at one boundary.

    EchoError                 any failure the gateway reports to a client (status, type, code)
    ├── InvalidRequest        400 malformed JSON, missing or mistyped fields
    ├── Unauthorized          401 bad or missing client key
    ├── NotFound              404 no such resource (an expired ad link, ads switched off)
    │   └── ModelNotFound     404 no route for the model name
    ├── PayloadTooLarge       413 request body over the limit
    ├── StoreUnavailable      503 a backing store (Redis) is down, frozen or unreachable
    └── UpstreamError         a provider failed; carries the status we answer with
        ├── UpstreamRejected  4xx from the provider, passed through with its meaning
        ├── RateLimited       429, keeps the provider's Retry-After
        ├── UpstreamTimeout   504 connect, first-token or between-chunk timeout
        └── UpstreamUnavailable 502 connection failure, 5xx, broken or truncated stream
            └── BrokenStream    the stream ended early or sent an event that does not parse

Before the first byte of a response an error becomes an HTTP error response; after it, one
`data: {"error": ...}` SSE event that ends the stream.
"""

from __future__ import annotations

from typing import Any

from echo_stream.ops.record import current_request_id


class EchoError(Exception):
    """Base of every error the gateway reports to a client."""

    status: int = 500
    type: str = "server_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The OpenAI error object: `{"error": {"message", "type", "param", "code"}}`, plus
        `request_id` while a request is being served."""
        error: dict[str, Any] = {
            "message": self.message,
            "type": self.type,
            "param": self.param,
            "code": self.code,
        }
        if (request_id := current_request_id()) is not None:
            error["request_id"] = request_id
        return {"error": error}


class InvalidRequest(EchoError):
    status = 400
    type = "invalid_request_error"


class Unauthorized(EchoError):
    status = 401
    type = "invalid_request_error"
    code = "invalid_api_key"


class NotFound(EchoError):
    status = 404
    type = "invalid_request_error"
    code = "not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"


class PayloadTooLarge(EchoError):
    status = 413
    type = "invalid_request_error"
    code = "request_too_large"


class StoreUnavailable(EchoError):
    """A backing store did not answer in time; the request may be tried again later."""

    status = 503
    type = "server_error"
    code = "store_unavailable"


class UpstreamError(EchoError):
    status = 502
    type = "upstream_error"


class UpstreamRejected(UpstreamError):
    """The provider refused the request (4xx but 429); its status and meaning pass through."""

    type = "invalid_request_error"


class RateLimited(UpstreamError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"


class UpstreamTimeout(UpstreamError):
    status = 504
    type = "timeout_error"
    code = "upstream_timeout"


class UpstreamUnavailable(UpstreamError):
    status = 502
    type = "upstream_error"
    code = "upstream_unavailable"


class BrokenStream(UpstreamUnavailable):
    """The provider's stream ended before it finished, or sent an event that does not parse.

    Same status and code as its parent for OpenAI clients; faces with a word for it (Lobe's
    `StreamChunkError`) tell it apart.
    """
