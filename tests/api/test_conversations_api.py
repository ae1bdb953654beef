"""The conversations API (the web chat's contract) and ownership, on both stores."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.conftest import make_app
from tests.databases import database_url  # noqa: F401  (fixture)

KEYS = "key-alice,key-bob"
ALICE = {"Authorization": "Bearer key-alice"}
BOB = {"Authorization": "Bearer key-bob"}


def _ask(base: str, prompt: str, headers: dict[str, str], **extra: Any) -> dict[str, Any]:
    response = httpx.post(base + "/chat", json={"prompt": prompt, "stream": False, **extra},
                          headers=headers, timeout=60)  # fmt: skip
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_list_read_rename_delete_follow_the_contract(
    server: Callable[..., str],
    database_url: str,  # noqa: F811
) -> None:
    base = server(make_app(database_url=database_url, echo_api_keys=KEYS))
    ids = [
        _ask(base, f"Question number {n} about streaming", ALICE)["conversation_id"]
        for n in range(3)
    ]
    page = httpx.get(base + "/v1/conversations?limit=2", headers=ALICE, timeout=30).json()
    assert page["object"] == "list" and page["has_more"] is True and page["next_cursor"]
    assert [c["id"] for c in page["data"]] == ids[::-1][:2]
    conversation = page["data"][0]
    assert set(conversation) == {
        "id",
        "object",
        "title",
        "model",
        "created_at",
        "updated_at",
        "metadata",
    }
    assert (
        conversation["object"] == "conversation"
        and conversation["title"] == "Question number 2 about streaming"
    )
    assert isinstance(conversation["created_at"], int) and conversation["metadata"] == {}
    rest = httpx.get(base + "/v1/conversations", params={"limit": 2, "cursor": page["next_cursor"]},
                     headers=ALICE, timeout=30).json()  # fmt: skip
    assert [c["id"] for c in rest["data"]] == [ids[0]] and rest["has_more"] is False
    assert rest["next_cursor"] is None

    full = httpx.get(f"{base}/v1/conversations/{ids[0]}", headers=ALICE, timeout=30).json()
    message_keys = {"id", "role", "content", "status", "finish_reason", "model", "provider",
                    "input_tokens", "output_tokens", "error", "created_at", "ad"}  # fmt: skip
    assert [set(m) for m in full["messages"]] == [message_keys, message_keys]
    assert [m["role"] for m in full["messages"]] == ["user", "assistant"]

    renamed = httpx.patch(f"{base}/v1/conversations/{ids[0]}", json={"title": "  My   chat "},
                          headers=ALICE, timeout=30)  # fmt: skip
    assert renamed.status_code == 200 and renamed.json()["title"] == "My chat"
    first = httpx.get(base + "/v1/conversations?limit=1", headers=ALICE, timeout=30).json()
    assert first["data"][0]["id"] == ids[0]  # renaming counts as an update: newest first

    deleted = httpx.delete(f"{base}/v1/conversations/{ids[0]}", headers=ALICE, timeout=30)
    assert deleted.status_code == 204 and deleted.content == b""
    gone = httpx.get(f"{base}/v1/conversations/{ids[0]}", headers=ALICE, timeout=30)
    assert gone.status_code == 404
    assert (
        httpx.delete(f"{base}/v1/conversations/{ids[0]}", headers=ALICE, timeout=30).status_code
        == 404
    )


def test_another_caller_can_neither_read_continue_rename_nor_delete(
    server: Callable[..., str],
    database_url: str,  # noqa: F811
) -> None:
    base = server(make_app(database_url=database_url, echo_api_keys=KEYS))
    cid = _ask(base, "Alice's secret plans", ALICE)["conversation_id"]
    url = f"{base}/v1/conversations/{cid}"
    assert httpx.get(base + "/v1/conversations", headers=BOB, timeout=30).json()["data"] == []
    assert httpx.get(url, headers=BOB, timeout=30).status_code == 404
    assert httpx.patch(url, json={"title": "pwned"}, headers=BOB, timeout=30).status_code == 404
    assert httpx.delete(url, headers=BOB, timeout=30).status_code == 404
    continued = httpx.post(base + "/chat", json={"prompt": "more", "conversation_id": cid, "stream": False},
                           headers=BOB, timeout=30)  # fmt: skip
    assert continued.status_code == 404
    via_messages = httpx.post(base + "/chat/conversation",
                              json={"conversation_id": cid, "prompt": "x", "stream": False},
                              headers=BOB, timeout=30)  # fmt: skip
    assert via_messages.status_code == 404
    mine = httpx.get(url, headers=ALICE, timeout=30).json()
    assert mine["title"] == "Alice's secret plans" and len(mine["messages"]) == 2
    assert httpx.get(url, timeout=30).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Bearer wrong"}, timeout=30).status_code == 401


def test_the_user_field_separates_people_within_one_key_only(
    server: Callable[..., str],
    database_url: str,  # noqa: F811
) -> None:
    base = server(make_app(database_url=database_url, echo_api_keys=KEYS))
    cid = _ask(base, "from carol", ALICE, user="carol")["conversation_id"]
    url = f"{base}/v1/conversations/{cid}"
    assert httpx.get(url, headers=ALICE, params={"user": "carol"}, timeout=30).status_code == 200
    assert httpx.get(url, headers=ALICE, params={"user": "dave"}, timeout=30).status_code == 404
    assert httpx.get(url, headers=ALICE, timeout=30).status_code == 404
    # Naming the same user under another key reaches nothing.
    assert httpx.get(url, headers=BOB, params={"user": "carol"}, timeout=30).status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/v1/conversations?limit=0", None, 400),
        ("GET", "/v1/conversations?limit=101", None, 400),
        ("GET", "/v1/conversations?cursor=garbage", None, 400),
        ("GET", "/v1/conversations/conv_nope", None, 404),
        ("GET", "/v1/conversations/bad%20id", None, 400),
        ("PATCH", "/v1/conversations/conv_nope", {"title": "x"}, 404),
        ("PATCH", "/v1/conversations/conv_nope", {"title": ""}, 400),
        ("PATCH", "/v1/conversations/conv_nope", {}, 400),
        ("DELETE", "/v1/conversations/conv_nope", None, 404),
    ],
)
def test_bad_input_and_unknown_ids(
    server: Callable[..., str], method: str, path: str, body: Any, status: int
) -> None:
    base = server(make_app())
    response = httpx.request(method, base + path, json=body, timeout=30)
    assert response.status_code == status, response.text
    assert "error" in response.json()


def test_openapi_describes_the_conversations_api(server: Callable[..., str]) -> None:
    spec = httpx.get(server(make_app()) + "/openapi.json", timeout=30).json()
    paths = spec["paths"]
    assert {"get"} <= set(paths["/v1/conversations"])
    assert {"get", "patch", "delete"} <= set(paths["/v1/conversations/{conversation_id}"])
    schemas = spec["components"]["schemas"]
    assert {"ConversationList", "ConversationWithMessages", "MessageOut", "Ad"} <= set(schemas)
    patch = paths["/v1/conversations/{conversation_id}"]["patch"]
    assert "title" in patch["requestBody"]["content"]["application/json"]["schema"]["properties"]


def test_cross_origin_front_ends_may_rename_delete_and_read_the_id(
    server: Callable[..., str],
) -> None:
    base = server(make_app(allowed_origins="https://chat.example"))
    origin = {"Origin": "https://chat.example"}
    preflight = httpx.options(base + "/v1/conversations/conv_x", timeout=30, headers={
        **origin, "Access-Control-Request-Method": "DELETE"})  # fmt: skip
    assert preflight.status_code == 200
    assert "DELETE" in preflight.headers["access-control-allow-methods"]
    answer = httpx.post(
        base + "/chat", json={"prompt": "hi", "stream": False}, headers=origin, timeout=30
    )
    assert "x-conversation-id" in answer.headers["access-control-expose-headers"].lower()
