"""A loopback fake of ElevenLabs' and Inworld's TTS APIs, speaking their documented wire formats.

ElevenLabs: `POST /v1/text-to-speech/{voice_id}[/stream]?output_format=...` with `xi-api-key`,
answering raw audio bytes (chunked when streamed); errors as `{"detail": {"status", "message"}}`.
Inworld: `POST /tts/v1/voice` -> `{"audioContent": <b64>}`, `POST /tts/v1/voice:stream` ->
newline-delimited `{"result": {"audioContent": <b64>}}`; errors as `{"code", "message"}`.

`mode` scripts the next answers: "ok", "401", "429", "500", "slow" (waits `delay` seconds before
the first byte), "cutoff" (drops the connection half-way). `active` counts requests in progress;
a request the gateway abandons leaves it (the fake's generator is cancelled on disconnect).
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

KEY = "fake-secret-key-123"


def audio_for(text: str) -> bytes:
    """Deterministic stand-in audio: recognisable bytes that carry the text."""
    return b"AUDIO:" + text.encode()


class FakeTTS:
    def __init__(self) -> None:
        self.mode = "ok"
        self.delay = 5.0
        self.gap = 0.0  # seconds between streamed pieces
        self.hold = 0.0  # seconds every answer waits before its first piece
        self.requests: list[dict[str, Any]] = []
        self.active = 0
        self.max_active = 0
        self.abandoned = 0
        self.lock = threading.Lock()
        self.app = Starlette(
            routes=[
                Route("/v1/text-to-speech/{voice}", self.eleven, methods=["POST"]),
                Route("/v1/text-to-speech/{voice}/stream", self.eleven, methods=["POST"]),
                Route("/v1/voices", self.eleven_voices, methods=["GET"]),
                Route("/tts/v1/voice", self.inworld, methods=["POST"]),
                Route("/tts/v1/voice:stream", self.inworld, methods=["POST"]),
                Route("/tts/v1/voices", self.inworld_voices, methods=["GET"]),
            ]
        )

    async def _record(self, request: Request) -> dict[str, Any]:
        body = json.loads(await request.body())
        entry = {
            "path": request.url.path,
            "query": dict(request.query_params),
            "headers": dict(request.headers),
            "body": body,
        }
        self.requests.append(entry)
        return entry

    def _error(self, inworld: bool) -> Response | None:
        status = {"401": 401, "429": 429, "500": 500}.get(self.mode)
        if status is None:
            return None
        message = {401: "Invalid API key", 429: "Too many requests", 500: "Internal error"}[status]
        if inworld:
            return JSONResponse({"code": 16, "message": message, "details": []}, status)
        return JSONResponse({"detail": {"status": "error", "message": message}}, status)

    def _authorised(self, request: Request, inworld: bool) -> bool:
        if inworld:
            return request.headers.get("authorization") == f"Basic {KEY}"
        return request.headers.get("xi-api-key") == KEY

    async def _pieces(self, pieces: list[bytes]) -> AsyncIterator[bytes]:
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        finished = False
        try:
            if self.mode == "slow":
                await asyncio.sleep(self.delay)
            await asyncio.sleep(self.hold)
            for index, piece in enumerate(pieces):
                if self.mode == "cutoff" and index == len(pieces) // 2:
                    raise RuntimeError("the fake drops the connection half-way")
                yield piece
                await asyncio.sleep(self.gap)
            finished = True
        finally:
            with self.lock:
                self.active -= 1
                self.abandoned += not finished and self.mode != "cutoff"

    async def eleven(self, request: Request) -> Response:
        entry = await self._record(request)
        if not self._authorised(request, inworld=False):
            return JSONResponse(
                {"detail": {"status": "invalid_api_key", "message": "bad key"}}, 401
            )
        if (error := self._error(inworld=False)) is not None:
            return error
        audio = audio_for(entry["body"]["text"])
        pieces = [audio[i : i + 8] for i in range(0, len(audio), 8)]
        if self.mode == "cutoff":
            pieces = pieces if len(pieces) > 1 else [audio[:3], audio[3:]]
        return StreamingResponse(self._pieces(pieces), media_type="audio/mpeg")

    async def inworld(self, request: Request) -> Response:
        entry = await self._record(request)
        if not self._authorised(request, inworld=True):
            return JSONResponse({"code": 16, "message": "bad key", "details": []}, 401)
        if (error := self._error(inworld=True)) is not None:
            return error
        audio = audio_for(entry["body"]["text"])
        if entry["path"].endswith(":stream"):
            halves = [audio[: len(audio) // 2], audio[len(audio) // 2 :]]
            lines = [
                json.dumps({"result": {"audioContent": base64.b64encode(h).decode()}}) + "\n"
                for h in halves
            ]
            pieces = [line.encode() for line in lines]
            if self.mode == "cutoff":  # the connection drops inside the second line
                pieces = [pieces[0], pieces[1][:10], pieces[1][10:]]
        else:
            body = json.dumps({"audioContent": base64.b64encode(audio).decode(), "usage": {}})
            pieces = [body.encode()[:20], body.encode()[20:]]
        return StreamingResponse(self._pieces(pieces), media_type="application/json")

    async def eleven_voices(self, request: Request) -> Response:
        if not self._authorised(request, inworld=False):
            return JSONResponse({"detail": {"status": "invalid_api_key"}}, 401)
        return JSONResponse({"voices": [{"voice_id": "v1", "name": "Vera"}]})

    async def inworld_voices(self, request: Request) -> Response:
        if not self._authorised(request, inworld=True):
            return JSONResponse({"code": 16, "message": "bad key"}, 401)
        return JSONResponse({"voices": [{"voiceId": "Ashley", "displayName": "Ashley"}]})
