"""The ad engine end to end: decision rate, eligibility, guard, caps, budgets, relevance, and the
exact-text invariant through every provider's full pipeline."""

from __future__ import annotations

import asyncio
import random
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from echo_stream.ads.bookkeeping import Bookkeeper
from echo_stream.ads.engine import AdEngine
from echo_stream.ads.inventory import load_inventory
from echo_stream.ads.store import MemoryAdStore
from echo_stream.protocol import ChatCompletionRequest
from echo_stream.providers.anthropic import AnthropicProvider
from echo_stream.providers.google import GoogleProvider
from echo_stream.providers.http import UpstreamOptions, make_client
from echo_stream.providers.mock import MockProvider
from echo_stream.providers.openai import OpenAIProvider
from echo_stream.streaming.chunks import ChunkWriter, encode_chunks
from echo_stream.streaming.collect import collect_completion
from echo_stream.streaming.pipeline import build_pipeline
from tests.conftest import make_settings
from tests.upstreams import (
    FakeUpstream,
    Reply,
    anthropic_stream,
    gemini_stream,
    openai_stream,
    random_pieces,
)

AD_BLOCK = re.compile(r"\n\n\[ad\]\n.*?\n\[/ad\]\[link\].*?\[/link\]\n\n", re.S)

ADS_YAML = """
ads:
  - id: chefbox
    advertiser: ChefBox
    title: ChefBox meal kits
    body: Fresh ingredients and easy recipes every week.
    url: https://chefbox.example
    keywords: [recipe, cooking, kitchen, dinner, pasta]
  - id: nimbus
    advertiser: NimbusHost
    title: NimbusHost cloud hosting
    body: Deploy your apps in seconds.
    url: https://nimbus.example
    keywords: [cloud, hosting, server, deploy, kubernetes]
    budget: 2
  - id: house
    advertiser: Echo AI
    title: Echo AI Pro
    body: Faster answers.
    url: https://echo-ai.example/pro
    keywords: [upgrade]
    house: true
"""


def request(content: str = "Tell me about Paris", **fields: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"model": "m", "messages": [{"role": "user", "content": content}], **fields}
    )


def engine(**overrides: Any) -> AdEngine:
    values = {"ad_injection_rate": 1.0, "ad_seed": 1, "min_response_length": 50, **overrides}
    built = make_settings(**values)
    return AdEngine(built, load_inventory(built.ads_file), MemoryAdStore())


async def answer(eng: AdEngine, req: ChatCompletionRequest, key: str | None = None) -> str:
    """Run the mock provider's answer through the engine's stage; return the text delivered."""
    events = MockProvider(delay_ms=0).stream(req, "echo-mock")
    stage = eng.stage(req, key, "http://gw.test")
    body = await collect_completion(
        build_pipeline(events, [stage] if stage else []), completion_id="c", created=1, model="m"
    )
    await asyncio.sleep(0)  # let bookkeeping tasks run
    await eng.settled()
    return str(body["choices"][0]["message"]["content"])


async def decisions(eng: AdEngine) -> dict[str, int]:
    await eng.settled()
    return (await eng.store.stats()).decisions


def test_every_eligible_answer_gets_exactly_one_ad_by_default() -> None:
    async def main() -> None:
        eng = engine()
        for number in range(20):
            text = await answer(eng, request(f"Question number {number} about travel"))
            assert len(AD_BLOCK.findall(text)) == 1
        assert await decisions(eng) == {"placed": 20}

    asyncio.run(main())


class _CountingStore(MemoryAdStore):
    """A memory store that keeps every `record_decision` call; `stall` holds the writes."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[tuple[str, int]] = []
        self.stall = asyncio.Event()
        self.stall.set()

    async def record_decision(self, outcome: str, count: int = 1) -> None:
        self.writes.append((outcome, count))
        await self.stall.wait()
        await super().record_decision(outcome, count)


def _counting_engine(store: _CountingStore, max_queued: int = 10_000) -> AdEngine:
    built = make_settings(ad_injection_rate=0.0, ad_seed=1)
    eng = AdEngine(built, load_inventory(built.ads_file), store)
    eng._bookkeeper = Bookkeeper(drainers=1, max_queued=max_queued)
    return eng


def test_decisions_made_before_the_write_starts_share_it() -> None:
    async def main() -> None:
        store = _CountingStore()
        eng = _counting_engine(store)
        for _ in range(50):  # one loop turn's worth of responses
            assert eng.stage(request(), None, "http://gw") is None
        eng.count_decision("placed")
        assert len(eng._bookkeeper._queue) == 1  # one queued write, not a coroutine each
        assert await decisions(eng) == {"rate": 50, "placed": 1}
        assert sorted(store.writes) == [("placed", 1), ("rate", 50)]  # two writes, not 51
        eng.count_decision("rate")  # after that write: a write of its own
        assert await decisions(eng) == {"rate": 51, "placed": 1}
        assert store.writes[-1] == ("rate", 1)

    asyncio.run(main())


def test_counts_of_a_dropped_write_go_with_the_next_one() -> None:
    async def nothing() -> None:
        pass

    async def main() -> None:
        store = _CountingStore()
        store.stall.clear()  # the store stops answering
        eng = _counting_engine(store, max_queued=2)
        eng.count_decision("rate")
        await asyncio.sleep(0)  # the first write takes its count and waits on the store
        eng.count_decision("rate")  # a second write, queued
        eng.background(nothing())
        eng.background(nothing())  # the queue is full: the queued write is dropped, unstarted
        eng.count_decision("too_short")  # a new write (dropping the first `nothing`)
        assert eng._bookkeeper.dropped == 2
        store.stall.set()
        assert await decisions(eng) == {"rate": 2, "too_short": 1}  # no count lost

    asyncio.run(main())


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_injection_rate_is_per_response_and_matches_the_setting(rate: float) -> None:
    async def main() -> None:
        eng = engine(ad_injection_rate=rate, ad_seed=42)
        chosen = sum(eng.stage(request(), None, "http://gw") is not None for _ in range(4000))
        assert abs(chosen / 4000 - rate) < 0.03
        assert (await decisions(eng))["rate"] == 4000 - chosen

    asyncio.run(main())


def test_seed_makes_decisions_reproducible() -> None:
    async def main() -> tuple[list[bool], list[bool]]:
        runs = []
        for _ in range(2):
            eng = engine(ad_injection_rate=0.5, ad_seed=7)
            runs.append([eng.stage(request(), None, "http://gw") is not None for _ in range(200)])
            await eng.settled()
        return runs[0], runs[1]

    first, second = asyncio.run(main())
    assert first == second and 0 < sum(first) < 200


@pytest.mark.parametrize(
    ("fields", "key", "reason"),
    [
        ({"n": 2}, None, "multiple_choices"),
        ({"response_format": {"type": "json_object"}}, None, "json_output"),
        ({}, "k-free", "ad_free_key"),
    ],
)
def test_ineligible_requests_get_no_ad(
    fields: dict[str, Any], key: str | None, reason: str
) -> None:
    async def main() -> None:
        eng = engine(ad_free_keys="k-free")
        assert eng.stage(request(**fields), key, "http://gw") is None
        assert await decisions(eng) == {reason: 1}

    asyncio.run(main())


@pytest.mark.parametrize(
    "content",
    [
        "I think I have symptoms of diabetes, what medication helps?",
        "Who should I vote for in the election?",
    ],
)
def test_sensitive_topics_suppress_ads(content: str) -> None:
    async def main() -> None:
        eng = engine()
        assert not AD_BLOCK.search(await answer(eng, request(content)))
        assert await decisions(eng) == {"sensitive_topic": 1}

    asyncio.run(main())


def test_custom_sensitive_terms() -> None:
    async def main() -> None:
        eng = engine(ad_sensitive_terms="gambling, casino")
        assert not AD_BLOCK.search(await answer(eng, request("best casino strategy")))

    asyncio.run(main())


def test_relevant_ad_is_chosen_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "ads.yaml"
    path.write_text(ADS_YAML)

    async def main() -> None:
        eng = engine(ads_file=str(path))
        assert "ChefBox" in await answer(eng, request("A quick pasta recipe for dinner?"))
        assert "NimbusHost" in await answer(eng, request("How do I deploy a server to the cloud?"))
        assert "Echo AI Pro" in await answer(eng, request("What is the capital of Peru?"))

    asyncio.run(main())


def test_min_relevance_with_no_fallback_serves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "ads.yaml"
    path.write_text(ADS_YAML)

    async def main() -> None:
        eng = engine(ads_file=str(path), ad_fallback="none", ad_min_relevance=0.2)
        assert not AD_BLOCK.search(await answer(eng, request("What is the capital of Peru?")))
        assert await decisions(eng) == {"below_min_relevance": 1}

    asyncio.run(main())


def test_impression_budget_is_respected(tmp_path: Path) -> None:
    path = tmp_path / "ads.yaml"
    path.write_text(ADS_YAML)

    async def main() -> None:
        eng = engine(ads_file=str(path))
        served = [await answer(eng, request("deploy kubernetes to the cloud")) for _ in range(4)]
        assert [("NimbusHost" in text) for text in served] == [True, True, False, False]
        assert (await eng.store.stats()).ads["nimbus"].impressions == 2

    asyncio.run(main())


def test_frequency_cap_and_no_repeat_per_user() -> None:
    async def main() -> None:
        eng = engine(ad_cap_per_window=2, ad_cap_window_seconds=3600, ad_no_repeat=True)
        texts = [await answer(eng, request("hello", user="alice")) for _ in range(3)]
        ads = [AD_BLOCK.findall(text) for text in texts]
        assert [len(found) for found in ads] == [1, 1, 0]
        assert ads[0] != ads[1], "the same ad must not repeat within the window"
        assert len(AD_BLOCK.findall(await answer(eng, request("hello", user="bob")))) == 1
        assert (await decisions(eng))["frequency_cap"] == 1

    asyncio.run(main())


def test_markdown_format_is_labelled() -> None:
    async def main() -> None:
        text = await answer(engine(ad_format="markdown"), request())
        assert "**Sponsored** · Echo AI" in text

    asyncio.run(main())


def _provider(kind: str, upstream: FakeUpstream) -> Any:
    client = make_client(UpstreamOptions(max_retries=0), upstream.transport)
    options = UpstreamOptions(max_retries=0)
    if kind == "openai":
        return OpenAIProvider("http://up/v1", "k", options, client)
    if kind == "anthropic":
        return AnthropicProvider("http://up", "k", options, client=client)
    return GoogleProvider("http://up", "k", options, client)


BUILDERS = {"openai": openai_stream, "anthropic": anthropic_stream, "google": gemini_stream}
_words = st.text(
    alphabet=st.sampled_from(list("abcdefgh .,!?\n`-#|>*éü日本☕🎉0123456789ABC")),
    min_size=1,
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(
    kind=st.sampled_from(sorted(BUILDERS)),
    words=st.lists(_words, min_size=1, max_size=60),
    seed=st.integers(min_value=0, max_value=10_000),
    stream=st.booleans(),
    min_length=st.integers(min_value=0, max_value=120),
)
def test_pipeline_keeps_the_upstream_text_exact(
    kind: str, words: list[str], seed: int, stream: bool, min_length: int
) -> None:
    upstream_text = "".join(words)
    pieces = random_pieces(BUILDERS[kind](words), random.Random(seed), max_piece=17)

    async def main() -> str:
        upstream = FakeUpstream(Reply(pieces=pieces))
        req = request("hello", stream=stream)
        eng = engine(min_response_length=min_length)
        stage = eng.stage(req, None, "http://gw")
        assert stage is not None
        events = build_pipeline(_provider(kind, upstream).stream(req, "m"), [stage])
        if not stream:
            body = await collect_completion(events, completion_id="c", created=1, model="m")
            return str(body["choices"][0]["message"]["content"])
        out = b"".join(
            [
                chunk
                async for chunk in encode_chunks(
                    events, ChunkWriter("c", 1, "m"), include_usage=True
                )
            ]
        )
        text = ""
        for line in out.split(b"\n\n"):
            if line.startswith(b"data: {"):
                chunk = orjson.loads(line[6:])
                assert "error" not in chunk
                text += "".join(c["delta"].get("content") or "" for c in chunk["choices"])
        assert out.endswith(b"data: [DONE]\n\n")
        return text

    delivered = asyncio.run(main())
    assert len(AD_BLOCK.findall(delivered)) <= 1
    assert AD_BLOCK.sub("", delivered, count=1) == upstream_text


def test_text_then_tool_call_answer_gets_no_ad() -> None:
    """Anthropic-style answers can say something, then call a tool: no ad may land in the text."""
    from echo_stream.events import FLUSH, Finish, TextDelta, ToolCallDelta

    async def upstream() -> Any:
        await asyncio.sleep(0.01)  # as a real upstream takes a moment: the ad is chosen by now
        yield TextDelta("Let me check that for you. " * 20)
        yield FLUSH
        yield ToolCallDelta(0, "", "call_1", "lookup")
        yield ToolCallDelta(0, "{}")
        yield Finish("tool_calls")

    async def main() -> None:
        eng = engine(min_response_length=10)
        req = request("look it up", tools=[{"type": "function", "function": {"name": "lookup"}}])
        stage = eng.stage(req, None, "http://gw")
        assert stage is not None
        body = await collect_completion(stage(upstream()), completion_id="c", created=1, model="m")
        assert not AD_BLOCK.search(str(body["choices"][0]["message"]["content"]))
        assert await decisions(eng) == {"tool_calls": 1}

    asyncio.run(main())
