"""One `POST /v1/chat/completions` through the app in-process, for benches that call it directly."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
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


async def serve_chat(app: Any, body: bytes, headers: Iterable[tuple[bytes, bytes]] = ()) -> int:
    """Serve one chat request with `body` (and extra `headers`) to the end; its status."""
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client never leaves
        return {"type": "http.disconnect"}

    status = 0

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = chat_scope()
    scope["headers"] = [*scope["headers"], *headers]
    await app(scope, receive, send)
    return status
