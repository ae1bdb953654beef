"""The built-in offline provider: deterministic, realistic answers with no key and no network.

It is product code, not a test double: it lets anyone run, demo and benchmark the gateway in one
command. It streams a multi-paragraph markdown answer (sentences, a list, a code block) word by
word, calls a tool when tools are offered, honours `max_tokens`, `n` and JSON mode, and reports
usage it counted itself (about four characters a token).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson

from echo_stream.events import FLUSH, EventStream, Finish, TextDelta, ToolCallDelta, Usage
from echo_stream.protocol import ChatCompletionRequest, Tool
from echo_stream.providers.base import Provider, ProviderSetup, ProviderSpec

_ANSWER = """\
Thanks for asking about "{topic}". Here is a short overview, streamed by Echo Stream's \
built-in mock provider so you can try the gateway without any API keys.

The gateway sits between your chat front end and the model providers. It speaks the OpenAI \
wire format, so the OpenAI SDKs, curl and LibreChat work with it unchanged. Each model name \
routes to a provider adapter, e.g. OpenAI, Anthropic or Google Gemini, and every adapter's \
stream is normalised into the same chunks.

A few things worth knowing:

- Answers stream token by token as server-sent events.
- Tool calls, finish reasons and usage look the same for every provider.
- Sponsored blocks, when enabled, appear only at safe sentence boundaries.

Here is how to call it from Python:

```python
from openai import OpenAI

client = OpenAI(base_url="http://localhost:8000/v1", api_key="unused")
stream = client.chat.completions.create(
    model="echo-mock", messages=[{{"role": "user", "content": "Hi"}}], stream=True
)
for chunk in stream:
    print(chunk.choices[0].delta.content or "", end="")
```

Set a provider key such as OPENAI_API_KEY to talk to a real model. Until then, this answer \
is the same every time for the same question, which makes it handy for demos and tests."""

_AFTER_TOOL = """\
The {name} tool answered: {result}

That is everything the tool returned. Ask a follow-up question if you would like more detail, \
and I will use the tools again when they help."""

_WORDS = re.compile(r"\s*\S+")


def estimate_tokens(text: str) -> int:
    """Roughly four characters a token, never zero for non-empty text."""
    return (len(text) + 3) // 4


def _topic(request: ChatCompletionRequest) -> str:
    for message in reversed(request.messages):
        if message.role == "user" and (text := " ".join(message.text().split())):
            return text if len(text) <= 60 else text[:57].rstrip() + "..."
    return "your question"


def _example_value(schema: dict[str, Any], topic: str) -> Any:
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties") or {}
        return {key: _example_value(value, topic) for key, value in properties.items()}
    return {"integer": 1, "number": 1.0, "boolean": True, "array": []}.get(str(kind), topic)


class MockProvider:
    """Offline provider for `echo-mock` and `mock/*`."""

    name = "mock"

    def __init__(self, delay_ms: float = 15.0) -> None:
        self._delay = delay_ms / 1000.0

    async def stream(self, request: ChatCompletionRequest, upstream_model: str) -> EventStream:
        """Stream the deterministic answer (or tool call) for `request`."""
        choices = request.n or 1
        prompt_tokens = sum(estimate_tokens(m.text()) for m in request.messages)
        tool = self._tool_to_call(request)
        if tool is not None:
            arguments = orjson.dumps(
                _example_value(tool.function.parameters or {}, _topic(request))
            )
            pieces = [arguments[i : i + 8].decode() for i in range(0, len(arguments), 8)]
            for choice in range(choices):
                yield ToolCallDelta(0, "", f"call_mock_{choice}", tool.function.name, choice)
            async for piece in self._paced(pieces):
                for choice in range(choices):
                    yield ToolCallDelta(0, piece, choice=choice)
                yield FLUSH
            for choice in range(choices):
                yield Finish("tool_calls", choice)
            completion = estimate_tokens(arguments.decode()) * choices
        else:
            pieces = list(self._answer_pieces(request))
            limit = request.output_limit()
            cut = limit is not None and limit < len(pieces)
            pieces = pieces[:limit] if cut else pieces
            async for piece in self._paced(pieces):
                for choice in range(choices):
                    yield TextDelta(piece, choice)
                yield FLUSH
            for choice in range(choices):
                yield Finish("length" if cut else "stop", choice)
            completion = len(pieces) * choices
        yield Usage(prompt_tokens, completion, prompt_tokens + completion)

    async def aclose(self) -> None:
        """Nothing to release: the mock holds no connections."""

    async def _paced(self, pieces: list[str]) -> AsyncIterator[str]:
        for piece in pieces:
            await asyncio.sleep(self._delay)
            yield piece

    @staticmethod
    def _tool_to_call(request: ChatCompletionRequest) -> Tool | None:
        if not request.tools or request.tool_choice == "none":
            return None
        if request.messages[-1].role in ("tool", "function"):
            return None
        wanted = request.tool_choice_name()
        return next((t for t in request.tools if t.function.name == wanted), request.tools[0])

    @staticmethod
    def _answer_pieces(request: ChatCompletionRequest) -> Iterator[str]:
        last = request.messages[-1]
        if last.role in ("tool", "function"):
            calls = {c.id: c.function.name for m in request.messages for c in m.tool_calls or ()}
            name = last.name or calls.get(last.tool_call_id or "", "requested")
            text = _AFTER_TOOL.format(name=name, result=" ".join(last.text().split())[:300])
        elif (request.response_format or {}).get("type") in ("json_object", "json_schema"):
            text = orjson.dumps({"answer": f"A mock answer about {_topic(request)}."}).decode()
        else:
            text = _ANSWER.format(topic=_topic(request).replace('"', "'"))
        return iter(_WORDS.findall(text))


def create(setup: ProviderSetup) -> Provider:
    """The offline provider, with the configured delay between words."""
    return MockProvider(setup.settings.mock_delay_ms)


SPEC = ProviderSpec(
    name="mock",
    factory=create,
    prefixes=("mock/",),
    strip_name_prefix=False,
    catalog=("echo-mock",),
    uses_http=False,
)
