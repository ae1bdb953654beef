"""A model name outside the documented character set is a 400 on every face, in that face's
own error shape, and never reaches a provider."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.conftest import make_app

BAD = "gemini-../../../v1beta/files#"


@pytest.mark.parametrize(
    ("path", "payload"),
    [
        ("/v1/chat/completions", {"model": BAD, "messages": [{"role": "user", "content": "hi"}]}),
        ("/api/chat", {"model": BAD, "messages": [{"role": "user", "content": "hi"}]}),
        ("/chat", {"model": BAD, "prompt": "hi", "stream": True}),
        ("/api/stream", {"llmProvider": "gemini", "llmModel": BAD, "prompt": "hi"}),
    ],
)
def test_a_bad_model_name_is_a_400_on_every_face(
    server: Callable[..., str], path: str, payload: dict[str, Any]
) -> None:
    base = server(make_app())
    response = httpx.post(base + path, json=payload, timeout=30)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert "model" in str(response.json()).lower()  # each face's own shape names the field


def test_the_voice_face_keeps_its_own_error_shape(server: Callable[..., str]) -> None:
    base = server(make_app())
    body = {"llmProvider": "gemini", "llmModel": BAD, "prompt": "hi"}
    response = httpx.post(base + "/api/stream", json=body, timeout=30)
    assert response.status_code == 400
    assert isinstance(response.json()["error"], str)
