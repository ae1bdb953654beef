"""With AD_SEED set, the same requests get the same answers and the same ads, run after run."""

from __future__ import annotations

from collections.abc import Callable

import openai

from tests.conftest import make_app

QUESTIONS = [
    "How do I cook pasta for dinner?",
    "What is a good recipe for soup?",
    "Explain how streaming works",
    "Tell me about cooking rice",
    "What should I make for dinner tonight?",
    "How do servers send events?",
]


def _answers(base: str) -> list[str]:
    client = openai.OpenAI(base_url=base + "/v1", api_key="x", max_retries=0)
    answers = []
    for question in QUESTIONS:
        stream = client.chat.completions.create(
            model="echo-mock", messages=[{"role": "user", "content": question}], stream=True
        )
        answers.append("".join(c.choices[0].delta.content or "" for c in stream if c.choices))
    return answers


def test_seeded_runs_repeat_answers_and_ads_exactly(server: Callable[..., str]) -> None:
    runs = [
        _answers(server(make_app(ad_seed=7, ad_injection_rate=0.5, mock_delay_ms=1)))
        for _ in range(2)
    ]
    assert runs[0] == runs[1]
    with_ads = [answer for answer in runs[0] if "[ad]" in answer]
    assert 0 < len(with_ads) < len(QUESTIONS)  # the seed decides, and decides both ways
