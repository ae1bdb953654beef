"""The observing stage: the last stage of every answer's pipeline, whatever the face.

It admits the request against its key's limits before anything is sent upstream, notes time to
first token, tokens, the finish reason and the error type on the request's record, and lets the
drain cut the answer. Per event it does a type check and an integer increment: nothing is
allocated and no metric is touched until the request ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import aclosing

from echo_stream.errors import EchoError
from echo_stream.events import FLUSH, EventStream, Finish, Usage
from echo_stream.ops.drain import Drain, ShuttingDown
from echo_stream.ops.record import RequestRecord

Admit = Callable[[], Awaitable[None]]


async def observe(
    events: EventStream, record: RequestRecord, drain: Drain | None, admit: Admit | None
) -> EventStream:
    """Pass `events` through unchanged, writing what they say onto `record`."""
    if admit is not None:
        await admit()
    task = asyncio.current_task()
    if drain is not None and task is not None:
        drain.add(task)
    chunks = 0
    waiting = True
    try:
        async with aclosing(events):
            async for event in events:
                if event is FLUSH:
                    yield event
                    continue
                if waiting:
                    record.ttft_s = record.elapsed()
                    waiting = False
                chunks += 1
                if isinstance(event, Usage):
                    record.input_tokens = event.prompt_tokens
                    record.output_tokens = event.completion_tokens
                elif isinstance(event, Finish) and event.choice == 0:
                    record.finish = event.reason
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
        record.chunks += chunks
        if drain is not None and task is not None:
            drain.discard(task)
