"""Test doubles for the session streams: a fake n8n Wait node and an EventSource-conformant reader."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.live import serve

SECRET = "test-jwt-secret-" + "0123456789abcdef" * 4


@dataclass
class FakeN8n:
    """Behaves like a Wait node "On Webhook Call": 409 while the execution is still running,
    200 once when it waits, 409 once it has finished. Records every request."""

    running_attempts: int = 0
    """How many calls get 409 "is running already" before the Wait node is reached."""
    status_override: int | None = None
    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _finished: bool = False

    def resume_url(self, execution: int = 42, suffix: str = "") -> str:
        return f"{self.url}/webhook-waiting/{execution}{suffix}"

    def delivered(self) -> list[dict[str, Any]]:
        """The bodies of the calls answered 200."""
        return [r["json"] for r in self.requests if r["status"] == 200]

    def wait_for(self, count: int = 1, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Wait until `count` calls arrived; return all recorded calls."""
        deadline = time.monotonic() + timeout
        while len(self.requests) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return list(self.requests)

    async def _handle(self, request: Request) -> Response:
        execution = request.path_params["execution"]
        body = await request.body()
        with self._lock:
            if self.status_override is not None:
                status, message = self.status_override, "override"
            elif len(self.requests) < self.running_attempts:
                status, message = 409, f'The execution "{execution}" is running already.'
            elif not self._finished:
                self._finished = True
                status, message = 200, ""
            else:
                status, message = 409, f'The execution "{execution}" has finished already.'
            self.requests.append(
                {
                    "status": status,
                    "path": request.url.path,
                    "headers": dict(request.headers),
                    "json": httpx.Response(200, content=body).json() if body else None,
                }
            )
        if status == 200:
            return JSONResponse({"message": "Workflow was started"})
        return JSONResponse({"code": status, "message": message}, status_code=status)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/webhook-waiting/{execution}", self._handle, methods=["POST"]),
                Route("/webhook-waiting/{execution}/{suffix:path}", self._handle, methods=["POST"]),
            ]
        )


@contextmanager
def fake_n8n(**kwargs: Any) -> Iterator[FakeN8n]:
    """A running fake n8n on a free loopback port."""
    n8n = FakeN8n(**kwargs)
    with serve(n8n.app()) as server:
        n8n.url = server.url
        yield n8n


@dataclass
class SseEvent:
    id: str
    event: str
    data: str


@dataclass
class Read:
    status: int
    events: list[SseEvent]
    comments: list[str]
    last_event_id: str
    headers: dict[str, str]


def parse_event_stream(lines: Iterator[str], last_id: str = "", limit: int | None = None) -> Read:
    """Dispatch events exactly as the WHATWG EventSource parser does (lines already split)."""
    events: list[SseEvent] = []
    comments: list[str] = []
    data: list[str] = []
    event_type = ""
    for line in lines:
        if line == "":
            if data:
                events.append(SseEvent(last_id, event_type or "message", "\n".join(data)))
                if limit is not None and len(events) >= limit:
                    break
            data, event_type = [], ""
            continue
        if line.startswith(":"):
            comments.append(line[1:])
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        elif name == "event":
            event_type = value
        elif name == "id" and "\0" not in value:
            last_id = value
    return Read(0, events, comments, last_id, {})


def read_stream(
    url: str, last_event_id: str | None = None, limit: int | None = None, timeout: float = 60.0
) -> Read:
    """GET `url` like an EventSource would; stop after `limit` events (a dropped connection)."""
    headers = {"accept": "text/event-stream", "cache-control": "no-cache"}
    if last_event_id:
        headers["last-event-id"] = last_event_id
    with httpx.stream("GET", url, headers=headers, timeout=timeout) as response:
        if response.status_code != 200:
            response.read()
            return Read(response.status_code, [], [], last_event_id or "", dict(response.headers))
        read = parse_event_stream(response.iter_lines(), last_event_id or "", limit)
        read.status, read.headers = 200, dict(response.headers)
        return read


def text_of(events: list[SseEvent]) -> str:
    """What the original front end builds: every message's data until [DONE]."""
    out = ""
    for event in events:
        if event.event != "message":
            continue
        if event.data == "[DONE]":
            break
        out += event.data
    return out
