"""The session's answer bookkeeping: what a viewer is shown and what is recorded."""

from __future__ import annotations

from echo_stream.events import Finish, ReasoningDelta, TextDelta
from echo_stream.sessions.answer import Answer


def test_reasoning_is_neither_shown_nor_recorded() -> None:
    answer = Answer()
    for event in (ReasoningDelta("hmm"), TextDelta("Yes."), ReasoningDelta("more"), Finish("stop")):
        answer.take(event)
    assert answer.text == "Yes." and answer.pending() == "Yes."
    assert answer.finish_reason == "stop"
