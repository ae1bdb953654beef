"""Events -> one `chat.completion` object, for `stream: false`.

Non-streaming requests run the very same stream as streaming ones and collect it here, so the
two paths cannot drift apart.
"""

from __future__ import annotations

from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from echo_stream.errors import UpstreamUnavailable
from echo_stream.events import (
    EventStream,
    Finish,
    Flush,
    ReasoningDelta,
    RefusalDelta,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from echo_stream.streaming.chunks import usage_object


@dataclass(slots=True)
class _Call:
    id: str
    name: str
    arguments: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Choice:
    text: list[str] = field(default_factory=list)
    refusal: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    calls: dict[int, _Call] = field(default_factory=dict)
    finish: str | None = None

    def message(self) -> dict[str, Any]:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": "".join(self.text) if self.text or not self.calls else None,
            "refusal": "".join(self.refusal) if self.refusal else None,
        }
        if self.reasoning:
            message["reasoning_content"] = "".join(self.reasoning)
        if self.calls:
            message["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": "".join(call.arguments)},
                }
                for _, call in sorted(self.calls.items())
            ]
        return message


async def collect_completion(
    events: EventStream, *, completion_id: str, created: int, model: str
) -> dict[str, Any]:
    """Drain `events` and build the `chat.completion` they describe."""
    choices: dict[int, _Choice] = {}
    usage: Usage | None = None
    async with aclosing(events):
        async for event in events:
            if isinstance(event, Usage):
                usage = event
                continue
            if isinstance(event, Flush):
                continue
            choice = choices.get(event.choice)
            if choice is None:  # not `setdefault`, which would build a `_Choice` per event
                choice = choices[event.choice] = _Choice()
            if isinstance(event, TextDelta):
                choice.text.append(event.text)
            elif isinstance(event, ToolCallDelta):
                call = choice.calls.get(event.index)
                if call is None:
                    call_id = event.id or f"call_{event.choice}_{event.index}"
                    call = choice.calls[event.index] = _Call(call_id, event.name or "")
                call.arguments.append(event.arguments)
            elif isinstance(event, Finish):
                choice.finish = choice.finish or event.reason
            elif isinstance(event, RefusalDelta):
                choice.refusal.append(event.text)
            elif isinstance(event, ReasoningDelta):
                choice.reasoning.append(event.text)
    if not choices or any(choice.finish is None for choice in choices.values()):
        raise UpstreamUnavailable("the upstream stream ended before the answer finished")
    body: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": index,
                "message": choice.message(),
                "logprobs": None,
                "finish_reason": choice.finish,
            }
            for index, choice in sorted(choices.items())
        ],
    }
    if usage is not None:
        body["usage"] = usage_object(usage)
    return body
