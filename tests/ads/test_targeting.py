"""Tests for BM25 ad targeting and the selection rules around it."""

from __future__ import annotations

import dataclasses
import random
from collections import Counter
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from echo_stream.ads.inventory import Ad, load_inventory
from echo_stream.ads.targeting import AdSelector, Choice, tokenize

NOW = datetime(2025, 6, 1, 12, tzinfo=UTC)


def make_ad(ad_id: str, keywords: tuple[str, ...], **fields: object) -> Ad:
    """A sponsored ad with plain defaults for everything not given."""
    values: dict[str, object] = {
        "id": ad_id,
        "advertiser": ad_id.title(),
        "title": "",
        "body": "",
        "url": f"https://{ad_id}.example",
        "keywords": keywords,
        "topics": (),
        "weight": 1.0,
        "starts": None,
        "ends": None,
        "budget": None,
        "house": False,
    }
    values.update(fields)
    return Ad(**values)  # type: ignore[arg-type]


COOKING = make_ad(
    "chefbox",
    ("recipe", "cooking", "kitchen", "chef knife", "dinner"),
    title="ChefBox meal kits",
    body="Fresh ingredients and easy recipes delivered every week.",
    topics=("food",),
)
CLOUD = make_ad(
    "nimbus",
    ("cloud", "hosting", "server", "deploy", "kubernetes"),
    title="NimbusHost cloud hosting",
    body="Deploy your apps in seconds on fast servers.",
    topics=("devops",),
)
RUNNING = make_ad(
    "stride",
    ("running", "shoes", "marathon"),
    title="Stride running shoes",
    body="Light shoes for your next marathon.",
    topics=("sport",),
)
HOUSE = load_inventory(None)
INVENTORY = (COOKING, CLOUD, RUNNING, *HOUSE)


def choose(selector: AdSelector, query: str, seed: int = 0, **kwargs: object) -> Choice | str:
    """`selector.choose` at NOW with a seeded rng."""
    return selector.choose(query, now=NOW, rng=random.Random(seed), **kwargs)  # type: ignore[arg-type]


def chosen_id(result: Choice | str) -> str:
    """The chosen ad's id, failing the test when no ad was chosen."""
    assert isinstance(result, Choice), result
    return result.ad.id


# --- tokenising ------------------------------------------------------------------------------


def test_tokenize_lowercases_drops_stopwords_and_stems_plurals() -> None:
    assert tokenize("The Recipes for Boxes, Classes, Dishes and Berries!") == [
        "recipe",
        "box",
        "class",
        "dish",
        "berry",
    ]


def test_tokenize_keeps_unicode_words_and_leaves_short_or_latin_endings_alone() -> None:
    assert tokenize("Éclairs über gas bus analysis x 42") == [
        "éclair",
        "über",
        "gas",
        "bus",
        "analysis",
        "42",
    ]


# --- relevance -------------------------------------------------------------------------------


def test_cooking_query_picks_the_cooking_ad() -> None:
    selector = AdSelector(INVENTORY)
    result = choose(selector, "What should I cook for dinner tonight? A quick pasta recipe?")
    assert chosen_id(result) == "chefbox"
    assert isinstance(result, Choice) and not result.fallback


def test_cloud_query_picks_the_cloud_ad() -> None:
    selector = AdSelector(INVENTORY)
    result = choose(selector, "How do I deploy my Flask app to a cloud server with Kubernetes?")
    assert chosen_id(result) == "nimbus"


def test_relevance_is_between_zero_and_one_and_grows_with_matches() -> None:
    selector = AdSelector(INVENTORY)
    one, two, three = (
        selector.relevance(q)[0] for q in ("recipe", "recipe dinner", "recipe dinner kitchen")
    )
    assert 0.0 < one < two < three < 1.0


def test_relevance_ignores_unrelated_words_and_repetition() -> None:
    # The normalisation is per matched term, so a long chatty query is not penalised.
    selector = AdSelector(INVENTORY)
    short = selector.relevance("recipe")
    long = selector.relevance("recipe recipe " + "lorem ipsum dolor sit amet " * 50)
    assert long == pytest.approx(short)


def test_keywords_weigh_more_than_body_text() -> None:
    ad = make_ad("a", ("lasagna",), body="Also good for risotto.")
    filler = make_ad("b", ("unrelated",), body="Something else entirely.")
    selector = AdSelector([ad, filler])
    keyword, body = selector.relevance("lasagna")[0], selector.relevance("risotto")[0]
    assert keyword > body > 0.0


def test_relevance_calibration_is_roughly_as_documented() -> None:
    selector = AdSelector(INVENTORY)
    assert 0.35 < selector.relevance("kitchen")[0] < 0.55
    assert 0.5 < selector.relevance("kitchen dinner")[0] < 0.7


@given(st.text(max_size=300))
def test_relevance_is_always_in_range(query: str) -> None:
    assert all(0.0 <= score < 1.0 for score in AdSelector(INVENTORY).relevance(query))


# fmt: off
TRICKY_WORDS = (
    "recipe", "recipes", "berry", "berries", "box", "boxes", "class", "classes", "glass",
    "glasses", "bus", "buses", "gas", "pies", "the", "thes", "its", "it", "analysis", "dish",
    "dishes", "kubernetes", "cooky", "cookies", "yes", "series",
)
# fmt: on


@given(
    keywords=st.lists(
        st.lists(st.sampled_from(TRICKY_WORDS), min_size=1, max_size=4), min_size=1, max_size=4
    ),
    query=st.lists(st.sampled_from([*TRICKY_WORDS, "Recipes", "BOXES", "zebra"]), max_size=12),
)
def test_fast_lookup_matches_tokenize(keywords: list[list[str]], query: list[str]) -> None:
    # choose() looks query words up in a precomputed surface-form map instead of calling
    # tokenize(); this checks the two agree, using the selector's postings as the oracle.
    ads = [make_ad(f"ad{i}", tuple(words)) for i, words in enumerate(keywords)]
    selector = AdSelector(ads)
    text = " ".join(query)
    sums = [0.0] * len(ads)
    for term in set(tokenize(text)):
        for index, contribution in selector._postings.get(term, ()):
            sums[index] += contribution
    assert selector.relevance(text) == pytest.approx([s / (s + 1.0) for s in sums])


# --- minimum relevance and fallback ----------------------------------------------------------


def test_no_match_falls_back_to_a_house_ad() -> None:
    result = choose(AdSelector(INVENTORY), "Tell me a fun fact about octopuses.")
    assert isinstance(result, Choice)
    assert result.fallback and result.ad.house and result.relevance == 0.0


def test_below_min_relevance_falls_back_to_a_house_ad() -> None:
    selector = AdSelector(INVENTORY, min_relevance=0.9)
    result = choose(selector, "dinner recipe")
    assert isinstance(result, Choice)
    assert result.fallback and result.ad.house


def test_fallback_none_gives_the_reason() -> None:
    selector = AdSelector(INVENTORY, min_relevance=0.9, fallback="none")
    assert choose(selector, "dinner recipe") == "below_min_relevance"
    assert choose(AdSelector(INVENTORY, fallback="none"), "octopus facts") == "below_min_relevance"


def test_min_relevance_lets_good_matches_through() -> None:
    selector = AdSelector(INVENTORY, min_relevance=0.5, fallback="none")
    assert chosen_id(choose(selector, "recipe for dinner in my kitchen")) == "chefbox"
    assert choose(selector, "recipe") == "below_min_relevance"


def test_relevant_house_ad_is_not_a_fallback() -> None:
    result = choose(AdSelector(INVENTORY), "Is there an API and a Python SDK?")
    assert isinstance(result, Choice)
    assert result.ad.id == "echo-ai-api" and not result.fallback


def test_without_house_ads_the_fallback_has_nothing_to_serve() -> None:
    selector = AdSelector([COOKING, CLOUD])
    assert choose(selector, "octopus facts") == "below_min_relevance"


def test_empty_inventory() -> None:
    assert choose(AdSelector([]), "dinner recipe") == "no_inventory"


# --- eligibility -----------------------------------------------------------------------------


def test_excluded_ads_are_skipped() -> None:
    selector = AdSelector(INVENTORY)
    result = choose(selector, "dinner recipe kitchen", exclude={"chefbox"})
    assert isinstance(result, Choice) and result.ad.id != "chefbox"


def test_exhausted_ads_are_skipped() -> None:
    selector = AdSelector(INVENTORY)
    result = choose(selector, "cloud hosting", exhausted=["nimbus"])
    assert isinstance(result, Choice) and result.ad.id != "nimbus"


def test_reasons_when_nothing_is_eligible() -> None:
    selector = AdSelector([COOKING, CLOUD])
    assert choose(selector, "recipe", exclude={"chefbox", "nimbus"}) == "all_excluded"
    assert choose(selector, "recipe", exhausted={"chefbox", "nimbus"}) == "all_exhausted"
    assert choose(selector, "recipe", exclude={"chefbox"}, exhausted={"nimbus"}) == "all_excluded"


def test_ads_outside_their_dates_are_skipped() -> None:
    expired = dataclasses.replace(COOKING, ends=datetime(2025, 5, 1, tzinfo=UTC))
    future = dataclasses.replace(CLOUD, starts=datetime(2025, 7, 1, tzinfo=UTC))
    selector = AdSelector([expired, future, RUNNING], fallback="none")
    assert choose(selector, "dinner recipe") == "below_min_relevance"
    assert chosen_id(choose(selector, "marathon shoes")) == "stride"
    assert AdSelector([expired, future]).choose("x", now=NOW, rng=random.Random()) == (
        "no_active_ads"
    )
    later = datetime(2025, 7, 2, tzinfo=UTC)
    assert chosen_id(selector.choose("cloud", now=later, rng=random.Random(0))) == "nimbus"


def test_house_fallback_respects_exclusions() -> None:
    selector = AdSelector(INVENTORY)
    others = {ad.id for ad in HOUSE if ad.id != "echo-ai-voice"}
    for seed in range(20):
        assert chosen_id(choose(selector, "octopus facts", seed, exclude=others)) == "echo-ai-voice"


# --- randomness ------------------------------------------------------------------------------


def twins(weight_a: float, weight_b: float) -> list[Ad]:
    """Two ads that are equally relevant to everything, with the given weights."""
    return [
        make_ad("a", ("espresso", "coffee"), weight=weight_a),
        make_ad("b", ("espresso", "coffee"), weight=weight_b),
    ]


def test_seeded_rng_makes_choices_reproducible() -> None:
    selector = AdSelector([*twins(1.0, 1.0), *HOUSE])
    queries = ["espresso", "octopus", "coffee beans", "api sdk", "weather"] * 10

    def run(seed: int) -> list[str]:
        rng = random.Random(seed)
        return [chosen_id(selector.choose(q, now=NOW, rng=rng)) for q in queries]

    assert run(42) == run(42)
    assert len({tuple(run(seed)) for seed in range(5)}) > 1


def test_near_ties_are_shared_by_weight() -> None:
    selector = AdSelector(twins(3.0, 1.0))
    rng = random.Random(1234)
    counts = Counter(chosen_id(selector.choose("espresso", now=NOW, rng=rng)) for _ in range(4000))
    assert counts["a"] / 4000 == pytest.approx(0.75, abs=0.04)


def test_a_clearly_better_ad_wins_regardless_of_weight() -> None:
    better = make_ad("better", ("espresso", "coffee", "grinder"), weight=0.01)
    worse = make_ad("worse", ("espresso",), weight=100.0)
    selector = AdSelector([better, worse])
    rng = random.Random(7)
    results = {
        chosen_id(selector.choose("espresso coffee grinder", now=NOW, rng=rng)) for _ in range(200)
    }
    assert results == {"better"}


def test_house_fallback_is_drawn_by_weight() -> None:
    selector = AdSelector(HOUSE)
    rng = random.Random(99)
    draws = 5000
    counts = Counter(chosen_id(selector.choose("octopus", now=NOW, rng=rng)) for _ in range(draws))
    total_weight = sum(ad.weight for ad in HOUSE)
    for ad in HOUSE:
        assert counts[ad.id] / draws == pytest.approx(ad.weight / total_weight, abs=0.04)


# --- construction ----------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_min_relevance_must_be_a_fraction(bad: float) -> None:
    with pytest.raises(ValueError, match="min_relevance"):
        AdSelector(INVENTORY, min_relevance=bad)


def test_fallback_must_be_known() -> None:
    with pytest.raises(ValueError, match="fallback"):
        AdSelector(INVENTORY, fallback="always")  # type: ignore[arg-type]


def test_duplicate_ids_are_rejected() -> None:
    with pytest.raises(ValueError, match="unique"):
        AdSelector([COOKING, COOKING])
