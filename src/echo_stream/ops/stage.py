"""The observing source: the provider's events, guarded and watched, for every face.

It takes the place of `streaming.pipeline.first_event_within` at the head of the pipeline (so
observing adds no stage of its own): it admits the request against its key's limits before
anything is sent upstream, applies the first-token timeout, notes time to first token, tokens,
the finish reason and the error type on the request's record, and lets the drain cut the
answer. Per event it does one or two identity checks: nothing is allocated and no metric is
touched until the request ends. `record.chunks` counts upstream reads (`FLUSH`), each one
downstream write when streaming.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import aclosing

from echo_stream.errors import EchoError
from echo_stream.events import FLUSH, EventStream, Finish, TextDelta, Usage
from echo_stream.ops.drain import Drain, ShuttingDown
from echo_stream.ops.metrics import Metrics
from echo_stream.ops.record import RequestRecord
from echo_stream.streaming.pipeline import first_event

Admit = Callable[[], Awaitable[None]]


async def observed_source(
    events: EventStream,
    record: RequestRecord,
    *,
    first_token_s: float,
    drain: Drain | None,
    admit: Admit | None,
    metrics: Metrics | None = None,
) -> EventStream:
    """`events` after the limit check and the first-token guard, written onto `record`.

    `metrics.open_streams` counts the streamed answers in progress (`echo_active_streams`).
    """
    task = asyncio.current_task()
    if drain is not None and task is not None:
        drain.add(task)
    active = metrics if record.streamed else None
    if active is not None:
        active.open_streams += 1
    reads = 0
    try:
        async with aclosing(events):
            if admit is not None:
                await admit()
            first = await first_event(events, first_token_s, record.provider or "the provider")
            if first is None:
                return
            record.ttft_s = record.elapsed()
            _note(record, first)
            yield first
            async for event in events:
                # Text deltas and FLUSH are nearly every event: two identity checks, no call.
                if event is FLUSH:
                    reads += 1
                elif type(event) is not TextDelta:
                    _note(record, event)
                yield event
    except EchoError as error:
        record.error_type = error.code or error.type
        raise
    except asyncio.CancelledError:
        if drain is None or not drain.cutting or task is None:
            record.error_type = record.error_type or "client_disconnect"
            raise
        task.uncancel()
        record.error_type = "shutting_down"
        raise ShuttingDown("The gateway is shutting down; this answer was cut short") from None
    finally:
        record.chunks += reads or 1
        if active is not None:
            active.open_streams -= 1
        if drain is not None and task is not None:
            drain.discard(task)


def _note(record: RequestRecord, event: object) -> None:
    """Keep what the record needs from a non-text event (usage, choice 0's finish)."""
    if isinstance(event, Usage):
        record.input_tokens = event.prompt_tokens
        record.output_tokens = event.completion_tokens
    elif isinstance(event, Finish) and event.choice == 0:
        record.finish = event.reason
