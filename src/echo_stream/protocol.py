"""The OpenAI chat wire format, as the gateway accepts it.

Pure data: request models follow OpenAI's own names. Unknown fields are kept (`extra="allow"`)
so clients such as LibreChat that send extras are never refused for them; each provider adapter
decides which fields it forwards. Responses are written by `streaming.chunks` and
`streaming.collect` straight to JSON, because one is built per streamed token.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Role = Literal["system", "developer", "user", "assistant", "tool", "function"]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ImageURL(_Open):
    url: str = Field(min_length=1)
    detail: str | None = None


class ContentPart(_Open):
    """One part of a multi-part message: `text`, `image_url`, or another type kept as-is."""

    type: str
    text: str | None = None
    image_url: ImageURL | None = None

    @model_validator(mode="after")
    def _has_its_payload(self) -> ContentPart:
        if self.type == "text" and self.text is None:
            raise ValueError("a 'text' content part needs a 'text' string")
        if self.type == "image_url" and self.image_url is None:
            raise ValueError("an 'image_url' content part needs an 'image_url' object with a 'url'")
        return self


class FunctionCall(_Open):
    name: str
    arguments: str = ""


class ToolCall(_Open):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(_Open):
    role: Role
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None

    def text(self) -> str:
        """The message's text parts joined; images and other parts are left out."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text or "" for part in self.content if part.type == "text")


class FunctionDefinition(_Open):
    name: str = Field(min_length=1)
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(_Open):
    type: Literal["function"] = "function"
    function: FunctionDefinition


class StreamOptions(_Open):
    include_usage: bool = False


class ChatCompletionRequest(_Open):
    """`POST /v1/chat/completions` body."""

    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    tools: list[Tool] | None = None
    tool_choice: Literal["none", "auto", "required"] | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    user: str | None = None
    n: int | None = Field(None, ge=1, le=16)
    response_format: dict[str, Any] | None = None
    reasoning_effort: str | None = None
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    presence_penalty: float | None = Field(None, ge=-2, le=2)

    def output_limit(self) -> int | None:
        """The client's cap on generated tokens, whichever field carried it."""
        return self.max_completion_tokens or self.max_tokens

    def stop_list(self) -> list[str]:
        """`stop` as a list, whether it came as a string or a list."""
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    def tool_choice_name(self) -> str | None:
        """The function name when `tool_choice` forces one specific function."""
        if isinstance(self.tool_choice, dict):
            function = self.tool_choice.get("function")
            name = function.get("name") if isinstance(function, dict) else None
            if isinstance(name, str):
                return name
        return None

    def wants_usage(self) -> bool:
        """True when the stream must end with a usage chunk."""
        return bool(self.stream_options and self.stream_options.include_usage)
