"""The ASGI scope of one `POST /v1/chat/completions`, for benches that call the app in-process."""

from __future__ import annotations

from typing import Any

CHAT_PATH = "/v1/chat/completions"


def chat_scope() -> dict[str, Any]:
    """A fresh HTTP scope for the chat endpoint, as uvicorn would hand it to the app."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": CHAT_PATH,
        "raw_path": CHAT_PATH.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"host", b"bench")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
