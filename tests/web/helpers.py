"""Shared steps of the browser tests: open the page on a live gateway, send, wait."""

from __future__ import annotations

from typing import Any

import httpx

TIMEOUT_MS = 30_000
"""Generous: the machine is shared and loaded; nothing here measures time."""


def open_chat(page: Any, base: str) -> None:
    """Load the chat page and wait until it has its models (and has probed history/voice)."""
    page.goto(base + "/")
    page.wait_for_selector("body[data-ready=true]", timeout=TIMEOUT_MS)


def send(page: Any, text: str) -> None:
    """Type `text` and press Enter, as a person would."""
    page.fill("#prompt", text)
    page.press("#prompt", "Enter")


def last_answer(page: Any) -> Any:
    return page.locator(".msg.assistant").last


def wait_answer(page: Any, state: str = "done") -> Any:
    """Wait for the last answer to end in `state` (done, stopped or error)."""
    page.wait_for_selector(f".msg.assistant[data-state={state}]", timeout=TIMEOUT_MS)
    return last_answer(page)


def endpoint_missing(base: str, path: str, headers: dict[str, str] | None = None) -> bool:
    """True when this build has no such endpoint (another issue's, not merged here yet)."""
    return httpx.get(base + path, headers=headers or {}, timeout=30).status_code == 404
