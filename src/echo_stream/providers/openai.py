"""Any OpenAI-compatible upstream: OpenAI itself, vLLM, Ollama, Groq, OpenRouter and the like.

The upstream already speaks our wire format, so the adapter forwards the fields OpenAI knows and
reads the stream's deltas back into events. Parsing is plain dict access on `orjson` output:
this runs once per token, where building pydantic objects would cost more than everything else.
"""

from __future__ import annotations

from contextlib import aclosing
from typing import Any

from echo_stream.errors import UpstreamUnavailable
from echo_stream.events import (
    FLUSH,
    AnswerEvent,
    EventStream,
    Finish,
    FinishReason,
    RefusalDelta,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from echo_stream.protocol import ChatCompletionRequest
from echo_stream.providers.http import (
    UpstreamOptions,
    json_events,
    make_client,
    open_stream,
    truncated,
)
from echo_stream.providers.httpx_client import UpstreamClient

FORWARDED_FIELDS = frozenset(
    {
        "messages",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "temperature",
        "top_p",
        "max_tokens",
        "max_completion_tokens",
        "stop",
        "seed",
        "user",
        "n",
        "response_format",
        "reasoning_effort",
        "frequency_penalty",
        "presence_penalty",
        "logit_bias",
        "metadata",
        "store",
        "service_tier",
        "prediction",
        "verbosity",
        "prompt_cache_key",
        "safety_identifier",
        "web_search_options",
    }
)
_SAMPLING_FIELDS = ("temperature", "top_p", "frequency_penalty", "presence_penalty", "logit_bias")
_REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")
_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}


def build_body(request: ChatCompletionRequest, upstream_model: str) -> dict[str, Any]:
    """The upstream request: OpenAI's own fields, always streamed with usage."""
    fields = request.model_fields_set | set(request.model_extra or ())
    body = request.model_dump(include=fields & FORWARDED_FIELDS, exclude_none=True)
    if upstream_model.startswith(_REASONING_PREFIXES):
        # Reasoning models refuse `max_tokens` and sampling knobs; LibreChat sends them anyway.
        if "max_tokens" in body:
            body.setdefault("max_completion_tokens", body.pop("max_tokens"))
        for name in _SAMPLING_FIELDS:
            body.pop(name, None)
    else:
        body.pop("reasoning_effort", None)
    body["model"] = upstream_model
    body["stream"] = True
    body["stream_options"] = {"include_usage": True}
    return body


def parse_chunk(chunk: dict[str, Any]) -> list[AnswerEvent]:
    """One `chat.completion.chunk` as events."""
    if chunk.get("error"):
        error = chunk["error"]
        message = error.get("message") if isinstance(error, dict) else str(error)
        raise UpstreamUnavailable(f"openai stream error: {message}")
    events: list[AnswerEvent] = []
    for choice in chunk.get("choices") or ():
        index = choice.get("index", 0)
        delta = choice.get("delta") or {}
        if content := delta.get("content"):
            events.append(TextDelta(content, index))
        if refusal := delta.get("refusal"):
            events.append(RefusalDelta(refusal, index))
        for call in delta.get("tool_calls") or ():
            function = call.get("function") or {}
            events.append(
                ToolCallDelta(
                    index=call.get("index", 0),
                    arguments=function.get("arguments") or "",
                    id=call.get("id"),
                    name=function.get("name"),
                    choice=index,
                )
            )
        if reason := choice.get("finish_reason"):
            events.append(Finish(_FINISH.get(reason, "stop"), index))
    if usage := chunk.get("usage"):
        events.append(_usage(usage))
    return events


def _usage(usage: dict[str, Any]) -> Usage:
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    prompt = usage.get("prompt_tokens") or 0
    completion = usage.get("completion_tokens") or 0
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=usage.get("total_tokens") or prompt + completion,
        cached_tokens=prompt_details.get("cached_tokens"),
        reasoning_tokens=completion_details.get("reasoning_tokens"),
    )


class OpenAIProvider:
    """Adapter for an OpenAI-compatible `/chat/completions` endpoint."""

    name = "openai"

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        options: UpstreamOptions,
        client: UpstreamClient | None = None,
    ) -> None:
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._options = options
        self._client = client or make_client(options)

    async def stream(self, request: ChatCompletionRequest, upstream_model: str) -> EventStream:
        """Stream the completion from the upstream as events."""
        response = await open_stream(
            self._client,
            self.name,
            self._url,
            body=build_body(request, upstream_model),
            headers=self._headers,
            max_retries=self._options.max_retries,
        )
        started: set[int] = set()
        finished: set[int] = set()
        async with aclosing(json_events(self.name, response)) as payloads:
            async for payload in payloads:
                if payload is FLUSH:
                    yield FLUSH
                    continue
                for event in parse_chunk(payload):
                    if isinstance(event, Finish):
                        finished.add(event.choice)
                    elif not isinstance(event, Usage):
                        started.add(event.choice)
                    yield event
        # Some compatible servers omit [DONE]: fine once every choice has finished.
        if not finished or started - finished:
            raise truncated(self.name)

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self._client.aclose()
