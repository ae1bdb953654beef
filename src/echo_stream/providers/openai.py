"""Any OpenAI-compatible upstream: OpenAI itself, vLLM, Ollama, Groq, OpenRouter and the like.

The upstream already speaks our wire format, so the adapter forwards the fields OpenAI knows and
reads the stream's deltas back into events; the reasoning some compatible servers stream
(`delta.reasoning_content` from DeepSeek and vLLM, `delta.reasoning` from OpenRouter and Ollama)
becomes `ReasoningDelta`. Parsing is plain dict access on `orjson` output:
this runs once per token, where building pydantic objects would cost more than everything else.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from echo_stream.errors import UpstreamUnavailable
from echo_stream.events import (
    AnswerEvent,
    Finish,
    FinishReason,
    ReasoningDelta,
    RefusalDelta,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from echo_stream.protocol import ChatCompletionRequest
from echo_stream.providers import shapes
from echo_stream.providers.base import Provider, ProviderSetup, ProviderSpec
from echo_stream.providers.http import HttpProvider, UpstreamOptions, truncated
from echo_stream.providers.openai_texts import content_texts
from echo_stream.providers.payloads import PayloadDecoder
from echo_stream.providers.transport.base import UpstreamClient
from echo_stream.providers.transport.urls import build_url

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
    """One `chat.completion.chunk` as events; a wrong shape raises (TypeError, KeyError...)."""
    if chunk.get("error"):
        error = chunk["error"]
        message = error.get("message") if isinstance(error, dict) else str(error)
        raise UpstreamUnavailable(f"openai stream error: {message}")
    events: list[AnswerEvent] = []
    for choice in chunk.get("choices") or ():
        index = choice.get("index", 0)
        if type(index) is not int or not 0 <= index < 1024:  # inline: no call per token
            index = shapes.index(index)
        delta = choice.get("delta") or {}
        if content := delta.get("content"):
            if type(content) is not str:
                raise TypeError(f"content is {type(content).__name__}, not a string")
            events.append(TextDelta(content, index))
        if refusal := delta.get("refusal"):
            events.append(RefusalDelta(shapes.text(refusal), index))
        # DeepSeek and vLLM say `reasoning_content`, OpenRouter and Ollama `reasoning`.
        if reasoning := delta.get("reasoning_content") or delta.get("reasoning"):
            events.append(ReasoningDelta(shapes.text(reasoning), index))
        for call in delta.get("tool_calls") or ():
            function = call.get("function") or {}
            events.append(
                ToolCallDelta(
                    index=shapes.index(call.get("index", 0)),
                    arguments=shapes.text(function.get("arguments") or ""),
                    id=shapes.optional_text(call.get("id")),
                    name=shapes.optional_text(function.get("name")),
                    choice=index,
                )
            )
        if reason := choice.get("finish_reason"):
            events.append(Finish(_FINISH.get(shapes.text(reason), "stop"), index))
    if usage := chunk.get("usage"):
        events.append(_usage(usage))
    return events


def _usage(usage: dict[str, Any]) -> Usage:
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    prompt = shapes.count(usage.get("prompt_tokens"))
    completion = shapes.count(usage.get("completion_tokens"))
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=shapes.count(usage.get("total_tokens")) or prompt + completion,
        cached_tokens=shapes.optional_count(prompt_details.get("cached_tokens")),
        reasoning_tokens=shapes.optional_count(completion_details.get("reasoning_tokens")),
    )


def _plain_text(payload: Any) -> str | None:
    """The text of a chunk that carries choice 0's next piece of text and nothing else (nearly
    every chunk), else None."""
    if type(payload) is dict and payload.get("usage") is None and not payload.get("error"):
        choices = payload.get("choices")
        if type(choices) is list and len(choices) == 1:
            choice = choices[0]
            delta = choice.get("delta") if type(choice) is dict else None
            if type(delta) is dict and len(delta) == 1 and not choice.get("finish_reason"):
                content, index = delta.get("content"), choice.get("index", 0)
                if type(content) is str and content and type(index) is int and index == 0:
                    return content
    return None


class _Reader:
    """Tracks which choices started and finished, to tell a whole answer from a cut one."""

    __slots__ = ("by_bytes", "finished", "started")

    def __init__(self) -> None:
        self.started: set[int] = set()
        self.finished: set[int] = set()
        self.by_bytes = True
        """Whether `read_texts` still tries `content_texts` first (until it misses a read of
        plain text: that upstream lays its chunks out another way)."""

    def feed(self, payload: Any) -> list[AnswerEvent]:
        # Most chunks carry one choice's next piece of text and nothing else: read that shape
        # straight off, and anything else the general way.
        text = _plain_text(payload)
        if text is not None:
            self.started.add(0)
            return [TextDelta(text)]
        events = parse_chunk(payload)
        for event in events:
            if isinstance(event, Finish):
                self.finished.add(event.choice)
            elif not isinstance(event, Usage):
                self.started.add(event.choice)
        return events

    def read_texts(self, decoder: PayloadDecoder, data: bytes) -> list[str] | None:
        """The texts of a read whose payloads are all choice 0's next piece of text, once choice
        0 has started (what `decoder.feed` and `feed` would turn into exactly these
        `TextDelta`s, changing nothing they read); else None. For `streaming.relay`."""
        if 0 not in self.started:
            return None
        tried = self.by_bytes and decoder.at_boundary(len(data))
        if tried and (texts := content_texts(data)) is not None:
            return texts
        payloads = decoder.peek(data)
        if payloads is None:
            return None
        texts = []
        for payload in payloads:
            text = _plain_text(payload)
            if text is None:
                return None
            texts.append(text)
        if tried:
            self.by_bytes = False
        return texts

    def finish(self) -> Iterable[AnswerEvent]:
        # Some compatible servers omit [DONE]: fine once every choice has finished.
        if not self.finished or self.started - self.finished:
            raise truncated(OpenAIProvider.name)
        return ()


class OpenAIProvider(HttpProvider):
    """Adapter for an OpenAI-compatible `/chat/completions` endpoint."""

    name = "openai"

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        options: UpstreamOptions,
        client: UpstreamClient | None = None,
    ) -> None:
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        super().__init__(options, client, headers)
        self._url = build_url(base_url, "/chat/completions")

    def prepare(self, request: ChatCompletionRequest, upstream_model: str) -> tuple[str, Any]:
        """The fixed endpoint; the model travels in the body."""
        return self._url, build_body(request, upstream_model)

    def reader(self) -> _Reader:
        """Per-answer state."""
        return _Reader()


def create(setup: ProviderSetup) -> Provider:
    """The adapter for one OpenAI-compatible upstream."""
    base_url = setup.base_url or SPEC.default_base_url or ""
    return OpenAIProvider(base_url, setup.api_key, setup.options, setup.client)


SPEC = ProviderSpec(
    name="openai",
    factory=create,
    key_variables=("OPENAI_API_KEY",),
    key_required=False,  # OPENAI_BASE_URL alone enables keyless local servers (Ollama, vLLM)
    base_url_variable="OPENAI_BASE_URL",
    default_base_url="https://api.openai.com/v1",
    prefixes=("gpt-", "chatgpt-", "o1", "o3", "o4"),
    catalog=(
        "gpt-4o",
        "gpt-4o-mini",
        "gpt-4.1",
        "gpt-4.1-mini",
        "gpt-4.1-nano",
        "o1",
        "o3",
        "o3-mini",
        "o4-mini",
    ),
)
