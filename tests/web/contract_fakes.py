"""Stand-ins for other issues' endpoints, written from the cross-issue contracts.

`ContractFakes` wraps the gateway app and answers `/v1/conversations` (issue 8) and
`/api/tts/providers` + `/api/stream` (issue 10) from memory, so the page's history sidebar and
speaker can be driven in a browser before those branches merge. On `/api/chat` it honours
`X-Conversation-Id` the way the contract says: it stores the last user message and the answer
(the model's text only; the ad with its position), and names the conversation in the response.
Everything else goes to the real app.
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import math
import struct
import time
import wave
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

VOICE_TEXT = ["Once upon a time, ", "a lighthouse keeper ", "watched the sea. ", "The end."]


def tone_wav(seconds: float = 0.15, rate: int = 16_000) -> bytes:
    """A short sine tone as a 16-bit mono WAV (the offline voice's container)."""
    frames = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * n / rate)))
        for n in range(int(seconds * rate))
    )
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(frames)
    return out.getvalue()


class ContractFakes:
    """The gateway app plus in-memory conversations and voice endpoints."""

    def __init__(self, app: ASGIApp, *, conversations: bool = True, voice: bool = True) -> None:
        self.app = app
        self.with_conversations = conversations
        self.with_voice = voice
        self.conversations: dict[str, dict[str, Any]] = {}
        self.voice_requests: list[dict[str, Any]] = []
        self._ids = itertools.count(1)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]
        request = Request(scope, receive)
        if self.with_conversations and path.startswith("/v1/conversations"):
            response = await self._conversations(request, path.removeprefix("/v1/conversations"))
        elif self.with_voice and path == "/api/tts/providers":
            response = JSONResponse(
                {
                    "providers": [
                        {
                            "id": "offline",
                            "name": "Offline voice",
                            "available": True,
                            "voices": [{"id": "en", "name": "English"}],
                            "default_voice": "en",
                        }
                    ],
                    "default": "offline",
                }
            )
        elif self.with_voice and path == "/api/stream" and method == "POST":
            self.voice_requests.append(await request.json())
            response = StreamingResponse(self._voice_events(), media_type="text/event-stream")
        elif (
            self.with_conversations
            and path == "/api/chat"
            and request.headers.get("x-conversation-id")
        ):
            await self._chat(scope, request, receive, send)
            return
        else:
            await self.app(scope, receive, send)
            return
        await response(scope, receive, send)

    # --- conversations ----------------------------------------------------------------------

    def _card(self, conversation: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in conversation.items() if k != "messages"}

    async def _conversations(self, request: Request, rest: str) -> Response:
        if rest in ("", "/"):
            cards = sorted(self.conversations.values(), key=lambda c: -c["updated_at"])
            limit = int(request.query_params.get("limit", "20"))
            start = int(request.query_params.get("cursor") or 0)  # opaque to the page
            data = [self._card(c) for c in cards[start : start + limit]]
            more = start + limit < len(cards)
            return JSONResponse(
                {
                    "object": "list",
                    "data": data,
                    "has_more": more,
                    "next_cursor": str(start + limit) if more else None,
                }
            )
        conversation = self.conversations.get(rest.strip("/"))
        if conversation is None:
            return JSONResponse(
                {"error": {"message": "not found", "type": "invalid_request_error"}}, 404
            )
        if request.method == "PATCH":
            conversation["title"] = (await request.json())["title"]
            return JSONResponse(self._card(conversation))
        if request.method == "DELETE":
            del self.conversations[conversation["id"]]
            return Response(status_code=204)
        return JSONResponse(conversation)

    async def _chat(self, scope: Scope, request: Request, receive: Receive, send: Send) -> None:
        body = await request.body()
        payload = json.loads(body)
        wanted = request.headers["x-conversation-id"]
        now = int(time.time())
        if wanted == "new":
            conversation_id = f"conv_{next(self._ids)}"
            title = payload["messages"][-1]["content"][:40]
            self.conversations[conversation_id] = {
                "id": conversation_id,
                "object": "conversation",
                "title": title,
                "model": payload["model"],
                "created_at": now,
                "updated_at": now,
                "metadata": {},
                "messages": [],
            }
        else:
            conversation_id = wanted
        conversation = self.conversations[conversation_id]
        conversation["updated_at"] = now + len(conversation["messages"])
        conversation["messages"].append(self._message("user", payload["messages"][-1]["content"]))
        sent = False
        chunks: list[bytes] = []

        async def replay() -> Message:
            nonlocal sent
            if sent:  # the body was read: from here on, wait for the client to leave
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def tee(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message["headers"], (b"x-conversation-id", conversation_id.encode())]
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    conversation["messages"].append(self._answer(b"".join(chunks), payload))
            await send(message)

        # The fake stores this turn itself: the real app behind it must not store it as well.
        inner = {**scope, "headers": [h for h in scope["headers"] if h[0] != b"x-conversation-id"]}
        await self.app(inner, replay, tee)

    def _message(self, role: str, content: str, **extra: Any) -> dict[str, Any]:
        return {
            "id": f"msg_{next(self._ids)}",
            "role": role,
            "content": content,
            "status": "complete",
            "finish_reason": None,
            "model": None,
            "provider": None,
            "input_tokens": None,
            "output_tokens": None,
            "error": None,
            "created_at": int(time.time()),
            "ad": None,
            **extra,
        }

    def _answer(self, stream: bytes, payload: dict[str, Any]) -> dict[str, Any]:
        text, ad = "", None
        for block in stream.decode().split("\n\n"):
            lines = dict(line.split(": ", 1) for line in block.split("\n") if ": " in line)
            data = json.loads(lines["data"]) if "data" in lines else None
            if lines.get("event") == "text":
                text += data
            elif lines.get("event") == "ad":
                ad = {
                    "ad_id": data["adId"],
                    "advertiser": data["advertiser"],
                    "title": data["title"],
                    "body": data["text"],
                    "url": data["link"],
                    "position": len(text),
                    "text": "",
                }
        return self._message("assistant", text, model=payload["model"], ad=ad)

    # --- voice ------------------------------------------------------------------------------

    async def _voice_events(self) -> Any:
        def event(data: dict[str, Any]) -> bytes:
            return f"data: {json.dumps(data)}\n\n".encode()

        audio = base64.b64encode(tone_wav()).decode()
        for piece in VOICE_TEXT:
            yield event({"type": "text", "content": piece})
        # Segments finish out of order, as concurrent synthesis does; the page must reorder.
        for sequence in (1, 0, 2):
            yield event(
                {
                    "type": "audio",
                    "audio": audio,
                    "contentType": "audio/wav",
                    "playSequence": sequence,
                    "metrics": {},
                }
            )
            yield event({"type": "audio_complete", "playSequence": sequence})
        yield event({"type": "tts_total", "totalSequences": 3})
        yield event(
            {
                "type": "done",
                "fullText": "".join(VOICE_TEXT),
                "llmMetrics": {"totalLatencyMs": 1, "timeToFirstTokenMs": 1},
                "ttsMetrics": {"latencyMs": 1},
                "totalTime": 2,
            }
        )
