"""Choosing the ad most relevant to a conversation: Okapi BM25 over a precomputed index.

Each ad is one BM25 document whose fields count with different weights (keywords 3, topics
and title 2, body 1; a BM25F-style weighted term frequency with one length normalisation).
Because a query term counts once however often the conversation repeats it, every term's
contribution to every ad is query-independent and is computed once, at start-up, into a
postings table, beside a map from every surface form ("recipes") to its indexed term
("recipe"). `choose()` then only splits the query into words, looks them up, and adds up a
few floats: no stemming, no per-ad work for ads the query does not mention.

Relevance in 0..1: each matched query term contributes
`(idf / max_idf) * tf_part / (k1 + 1)`, a number in 0..1 that is 1 for a term found in only
one ad and weighted heavily enough to saturate. Summed into `s`, relevance is `s / (s + 1)`.
So relevance does not depend on the query's length or on how many ads the inventory holds,
and `AD_MIN_RELEVANCE` reads roughly as (for terms unique to one ad; terms shared by many ads
count less): ~0.33 one word matched in an ad's body, ~0.45 one keyword matched, ~0.6 two,
~0.7 three, ~0.78 five. Zero means nothing matched: an ad with zero relevance is never
"relevant", whatever the minimum, so with the default minimum 0.0 the house fallback serves.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from echo_stream.ads.inventory import Ad

__all__ = ["AdSelector", "Choice", "NoAdReason", "tokenize"]

NoAdReason = Literal[
    "no_inventory",  # the selector was built with no ads
    "no_active_ads",  # no ad is within its start/end dates
    "all_exhausted",  # every active ad has spent its impression budget
    "all_excluded",  # every active ad with budget left was shown to this user recently
    "below_min_relevance",  # nothing relevant enough, and no house ad to fall back on
]

K1 = 1.2
B = 0.75
# Near-ties: ads within this fraction of the best relevance share the slot by weight.
TIE_MARGIN = 0.10
_FIELD_WEIGHTS = {"keywords": 3.0, "topics": 2.0, "title": 2.0, "body": 1.0}

_WORD_RE = re.compile(r"\w+")
# fmt: off
_STOPWORDS = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "been", "but", "by", "can", "could", "did", "do",
    "does", "for", "from", "had", "has", "have", "how", "i", "if", "in", "into", "is", "it", "its",
    "just", "me", "my", "no", "not", "of", "on", "or", "our", "so", "than", "that", "the", "their",
    "them", "then", "there", "these", "they", "this", "to", "too", "up", "us", "was", "we", "were",
    "what", "when", "where", "which", "who", "why", "will", "with", "would", "you", "your",
})
# fmt: on


def _stem(word: str) -> str:
    """Light plural stemming, applied the same way to ads and queries."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith("sses"):
        return word[:-2]
    if len(word) > 4 and word.endswith(("ches", "shes", "xes", "zes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def tokenize(text: str) -> list[str]:
    """Lower-cased, stemmed word tokens of `text`, without stopwords and one-letter words."""
    return [
        _stem(word)
        for word in _WORD_RE.findall(text.casefold())
        if len(word) > 1 and word not in _STOPWORDS
    ]


@dataclass(frozen=True, slots=True)
class Choice:
    """The ad to serve, its relevance in 0..1, and whether it is a house-ad fallback."""

    ad: Ad
    relevance: float
    fallback: bool


def _weighted_tf(ad: Ad) -> dict[str, float]:
    """Field-weighted term frequencies for one ad."""
    fields: dict[str, Iterable[str]] = {
        "keywords": ad.keywords,
        "topics": ad.topics,
        "title": (ad.title,),
        "body": (ad.body,),
    }
    counts: dict[str, float] = defaultdict(float)
    for field, texts in fields.items():
        for text in texts:
            for term in tokenize(text):
                counts[term] += _FIELD_WEIGHTS[field]
    return counts


def _build_postings(ads: Sequence[Ad]) -> dict[str, tuple[tuple[int, float], ...]]:
    """Per term, the (ad index, normalised BM25 contribution) pairs for every ad containing it."""
    tfs = [_weighted_tf(ad) for ad in ads]
    lengths = [sum(tf.values()) for tf in tfs]
    avg_length = sum(lengths) / len(lengths)
    doc_freq: Counter[str] = Counter(term for tf in tfs for term in tf)
    n = len(ads)
    # The idf of a term found in one ad only: the largest possible, used to scale idf to 0..1.
    max_idf = math.log(1 + (n - 0.5) / 1.5)
    postings: dict[str, list[tuple[int, float]]] = {}
    for index, (tf, length) in enumerate(zip(tfs, lengths, strict=True)):
        norm = K1 * (1 - B + B * length / avg_length) if avg_length else K1
        for term, freq in tf.items():
            idf = math.log(1 + (n - doc_freq[term] + 0.5) / (doc_freq[term] + 0.5))
            tf_part = freq * (K1 + 1) / (freq + norm)
            postings.setdefault(term, []).append((index, idf / max_idf * tf_part / (K1 + 1)))
    return {term: tuple(pairs) for term, pairs in postings.items()}


def _surface_map(terms: Iterable[str]) -> dict[str, str]:
    """Every lower-case word that tokenises to one of `terms`, mapped to that term.

    `_stem` only strips "s", "es" or "ies"->"y", so a term's surface forms are few and known;
    keeping only the candidates that really stem back to the term makes this map give exactly
    what `tokenize` would, while `choose()` skips stemming and stopword checks altogether.
    """
    surfaces: dict[str, str] = {}
    for term in terms:
        candidates = {term, term + "s", term + "es"}
        if term.endswith("y"):
            candidates.add(term[:-1] + "ies")
        for word in candidates:
            if word not in _STOPWORDS and _stem(word) == term:
                surfaces[word] = term
    return surfaces


class AdSelector:
    """Picks the most relevant eligible ad for a conversation; built once per inventory."""

    def __init__(
        self,
        ads: Sequence[Ad],
        *,
        min_relevance: float = 0.0,
        fallback: Literal["house", "none"] = "house",
    ) -> None:
        if not 0.0 <= min_relevance <= 1.0:
            raise ValueError(f"min_relevance must be between 0 and 1, got {min_relevance}")
        if fallback not in ("house", "none"):
            raise ValueError(f"fallback must be 'house' or 'none', got {fallback!r}")
        ids = [ad.id for ad in ads]
        if len(set(ids)) != len(ids):
            raise ValueError("ads must have unique ids")
        self._ads = tuple(ads)
        self._min_relevance = min_relevance
        self._fallback = fallback
        self._postings = _build_postings(self._ads) if self._ads else {}
        self._surfaces = _surface_map(self._postings)
        self._houses = [i for i, ad in enumerate(self._ads) if ad.house]

    def relevance(self, query: str) -> list[float]:
        """The 0..1 relevance of every ad (in inventory order) to `query`."""
        scores = self._scores(query)
        return [scores.get(index, 0.0) for index in range(len(self._ads))]

    def choose(
        self,
        query: str,
        *,
        now: datetime,
        rng: random.Random,
        exclude: Collection[str] = (),
        exhausted: Collection[str] = (),
    ) -> Choice | NoAdReason:
        """The ad to serve for `query`, or the reason no ad is served.

        `exclude` and `exhausted` are tested with `in` once per candidate: pass sets.
        """
        if not self._ads:
            return "no_inventory"

        def eligible(index: int) -> bool:
            ad = self._ads[index]
            return ad.id not in exhausted and ad.id not in exclude and ad.is_active(now)

        scores = self._scores(query)
        relevant = sorted(
            index
            for index, score in scores.items()
            if score >= self._min_relevance and eligible(index)
        )
        if relevant:
            best = max(scores[index] for index in relevant)
            tied = [index for index in relevant if scores[index] >= best * (1 - TIE_MARGIN)]
            chosen = self._draw(tied, rng)
            return Choice(self._ads[chosen], scores[chosen], fallback=False)
        houses = [index for index in self._houses if eligible(index)]
        if houses and self._fallback == "house":
            chosen = self._draw(houses, rng)
            return Choice(self._ads[chosen], scores.get(chosen, 0.0), fallback=True)
        return self._why_nothing(now, exclude, exhausted)

    def _scores(self, query: str) -> dict[int, float]:
        """The 0..1 relevance of each ad that matches at least one query term."""
        words = set(_WORD_RE.findall(query.casefold()))
        # Sorted so float sums, and so seeded choices, do not depend on string hashing.
        terms = sorted({self._surfaces[word] for word in words if word in self._surfaces})
        sums: dict[int, float] = defaultdict(float)
        for term in terms:
            for index, contribution in self._postings[term]:
                sums[index] += contribution
        return {index: total / (total + 1.0) for index, total in sums.items()}

    def _why_nothing(
        self, now: datetime, exclude: Collection[str], exhausted: Collection[str]
    ) -> NoAdReason:
        """The reason string for a query that got no ad (the slow path, so clarity first)."""
        active = [ad for ad in self._ads if ad.is_active(now)]
        if not active:
            return "no_active_ads"
        with_budget = [ad for ad in active if ad.id not in exhausted]
        if not with_budget:
            return "all_exhausted"
        if all(ad.id in exclude for ad in with_budget):
            return "all_excluded"
        return "below_min_relevance"

    def _draw(self, candidates: Sequence[int], rng: random.Random) -> int:
        """One candidate index, drawn with probability proportional to its ad's weight."""
        if len(candidates) == 1:
            return candidates[0]
        weights = [self._ads[index].weight for index in candidates]
        return rng.choices(candidates, weights=weights)[0]
