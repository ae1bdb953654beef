"""Voice stream bench: when does the first audio arrive, and what does the offline voice cost?

    python -m bench.voice            # 30 requests per case
    python -m bench.voice --quick    # 5 requests per case

The gateway runs in its own process (`--serve`) with the mock model (words `--token-delay-ms`
apart) and, besides the real offline voice, a fake TTS provider `fixed` that answers every
segment after exactly `--tts-latency-ms`. For each request the client notes when every event
arrives and works out when the first segment's text was complete (the arrival of the blank after
its last word, which is what lets the segmenter cut). With the fake TTS, the first audio should
arrive that much later plus the TTS latency plus a few milliseconds; the report shows the excess.
It also measures time to first text and first audio with the offline voice, and the offline
voice's real-time factor (synthesis time / audio duration) over the mock answer's segments.
Results go to `bench/results/voice.json`. Timings on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import statistics
import subprocess
import sys
import time
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

RESULTS = Path(__file__).resolve().parent / "results" / "voice.json"
PROMPT = "voices"


class FixedLatencyTTS:
    """A TTS provider that answers every segment with a short WAV after a fixed delay."""

    id = "fixed"
    name = "Fixed-latency fake"
    default_voice = "fake"
    available = True

    def __init__(self, latency_s: float) -> None:
        self._latency = latency_s

    async def synthesize(self, text: str, voice: str, *, previous_text: str = "") -> Any:
        from echo_stream.speech.base import Audio
        from echo_stream.speech.offline import wav_bytes

        await asyncio.sleep(self._latency)
        return Audio(wav_bytes(b"\x00\x00" * 2205, 22050), "audio/wav")

    async def stream_synthesize(
        self, text: str, voice: str, *, previous_text: str = ""
    ) -> AsyncIterator[Any]:
        yield await self.synthesize(text, voice)

    async def voices(self) -> list[Any]:
        return []

    async def aclose(self) -> None:
        return None


def serve(port: int, tts_latency_ms: float, token_delay_ms: float) -> None:
    """Run the gateway with the mock model and the fixed-latency TTS (the child process)."""
    import uvicorn

    from echo_stream.app import build_state, create_app
    from echo_stream.settings import Settings
    from echo_stream.speech.offline import OfflineTTS
    from echo_stream.speech.registry import Speech

    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, mock_delay_ms=token_delay_ms, ad_injection_rate=0.0
    )
    state = build_state(settings)
    state.speech = Speech([FixedLatencyTTS(tts_latency_ms / 1000), OfflineTTS()], "fixed")
    uvicorn.run(create_app(settings, state), host="127.0.0.1", port=port, log_level="warning")


async def one_request(client: httpx.AsyncClient, tts: str) -> dict[str, Any]:
    """One voice stream; arrival times (ms since sending) of what matters."""
    payload = {"prompt": PROMPT, "llmProvider": "mock", "ttsProvider": tts}
    texts: list[tuple[float, str]] = []
    first_audio: dict[str, Any] | None = None
    first_audio_at = done_at = 0.0
    started = time.perf_counter()
    async with client.stream("POST", "/api/stream", json=payload) as response:
        buffer = ""
        async for chunk in response.aiter_text():
            now = (time.perf_counter() - started) * 1000
            buffer += chunk
            *blocks, buffer = buffer.split("\n\n")
            for block in blocks:
                event = json.loads(block.removeprefix("data: "))
                if event["type"] == "text":
                    texts.append((now, event["content"]))
                elif event["type"] == "audio" and first_audio is None:
                    first_audio, first_audio_at = event, now
                elif event["type"] == "done":
                    done_at = now
    assert first_audio is not None and done_at, "the stream ended without audio or done"
    return {
        "first_text_ms": texts[0][0],
        "first_audio_ms": first_audio_at,
        "segment_text_ms": _segment_complete_at(texts, first_audio["text"]),
        "done_ms": done_at,
    }


def _segment_complete_at(texts: list[tuple[float, str]], segment: str) -> float:
    """When the text event carrying the blank after the segment's last word arrived."""
    raw = "".join(piece for _, piece in texts)
    last_word = segment.split()[-1]
    end = raw.find(last_word, max(0, len(segment) - len(last_word) - 20)) + len(last_word)
    seen = 0
    for arrived, piece in texts:
        seen += len(piece)
        if seen > end:
            return arrived
    return texts[-1][0]


def _summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50": round(statistics.median(ordered), 2),
        "p90": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))], 2),
        "min": round(ordered[0], 2),
        "max": round(ordered[-1], 2),
    }


async def measure(base_url: str, requests: int, tts_latency_ms: float) -> dict[str, Any]:
    """Sequential requests with the fixed-latency fake and with the offline voice."""
    results: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        await one_request(client, "fixed")  # warm-up
        await one_request(client, "offline")
        for tts in ("fixed", "offline"):
            runs = [await one_request(client, tts) for _ in range(requests)]
            case: dict[str, Any] = {
                "first_text_ms": _summary([r["first_text_ms"] for r in runs]),
                "first_audio_ms": _summary([r["first_audio_ms"] for r in runs]),
                "first_segment_text_ms": _summary([r["segment_text_ms"] for r in runs]),
            }
            if tts == "fixed":
                excess = [r["first_audio_ms"] - r["segment_text_ms"] - tts_latency_ms for r in runs]
                case["first_audio_excess_ms"] = _summary(excess)
            results[tts] = case
    return results


async def offline_rtf() -> dict[str, float]:
    """Synthesis time / audio duration of the offline voice over the mock answer's segments."""
    from echo_stream.providers.mock import _ANSWER
    from echo_stream.speech.offline import OfflineTTS
    from echo_stream.speech.segmenter import Segmenter

    segmenter = Segmenter()
    segments = segmenter.feed(_ANSWER.format(topic=PROMPT)) + segmenter.flush()
    tts = OfflineTTS()
    await tts.synthesize("Warm up.", "en-us")
    spent = audio = 0.0
    for segment in segments:
        began = time.perf_counter()
        result = await tts.synthesize(segment, "en-us")
        spent += time.perf_counter() - began
        with wave.open(io.BytesIO(result.data)) as reader:
            audio += reader.getnframes() / reader.getframerate()
    return {"segments": len(segments), "synthesis_s": round(spent, 4),
            "audio_s": round(audio, 2), "rtf": round(spent / audio, 5)}  # fmt: skip


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(requests: int, tts_latency_ms: float, token_delay_ms: float) -> dict[str, Any]:
    """Start the gateway process, measure, stop it; the report as a dict."""
    port = _free_port()
    command = [
        *(sys.executable, "-m", "bench.voice", "--serve", "--port", str(port)),
        *("--tts-latency-ms", str(tts_latency_ms), "--token-delay-ms", str(token_delay_ms)),
    ]
    process = subprocess.Popen(command, cwd=Path(__file__).resolve().parent.parent)
    try:
        base_url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(base_url + "/health", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the gateway did not start") from None
                time.sleep(0.1)
        report = {
            "requests_per_case": requests,
            "tts_latency_ms": tts_latency_ms,
            "token_delay_ms": token_delay_ms,
            "stream": asyncio.run(measure(base_url, requests, tts_latency_ms)),
            "offline_voice": asyncio.run(offline_rtf()),
        }
    finally:
        process.terminate()
        process.wait(timeout=10)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 requests per case")
    parser.add_argument("--requests", type=int, default=None)
    parser.add_argument("--tts-latency-ms", type=float, default=200.0)
    parser.add_argument("--token-delay-ms", type=float, default=15.0)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--no-save", action="store_true", help="print only")
    args = parser.parse_args()
    if args.serve:
        serve(args.port, args.tts_latency_ms, args.token_delay_ms)
        return
    requests = args.requests or (5 if args.quick else 30)
    report = run(requests, args.tts_latency_ms, args.token_delay_ms)
    print(json.dumps(report, indent=2))
    if not args.no_save:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
