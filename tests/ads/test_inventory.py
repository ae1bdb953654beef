"""Tests for loading and validating the ad inventory."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from echo_stream.ads.inventory import Ad, InventoryError, load_inventory


def entry(ad_id: str | None = "acme-1", **overrides: Any) -> dict[str, Any]:
    """A valid ads-file entry, with `overrides` applied (None removes a field)."""
    fields: dict[str, Any] = {
        "id": ad_id,
        "advertiser": "Acme",
        "title": "Acme rockets",
        "body": "Rockets for every road runner.",
        "url": "https://acme.example/rockets",
        "keywords": ["rocket", "launch"],
    }
    fields.update(overrides)
    return {key: value for key, value in fields.items() if value is not None}


def write(tmp_path: Path, name: str, document: object) -> str:
    """Write `document` as YAML or JSON (by extension) and return the path."""
    path = tmp_path / name
    if name.endswith(".json"):
        path.write_text(json.dumps(document), "utf-8")
    else:
        path.write_text(yaml.safe_dump(document, sort_keys=False), "utf-8")
    return str(path)


def load_error(path: str) -> str:
    """The InventoryError message for `path`, with the temp directory stripped."""
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    return str(caught.value).replace(str(Path(path).parent) + "/", "")


# --- valid files -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ads.yaml", "ads.yml", "ads.json"])
def test_loads_a_list_or_an_ads_mapping(tmp_path: Path, name: str) -> None:
    listed = load_inventory(write(tmp_path, name, [entry("a"), entry("b")]))
    wrapped = load_inventory(write(tmp_path, "wrapped-" + name, {"ads": [entry("a"), entry("b")]}))
    assert [ad.id for ad in listed] == ["a", "b"]
    assert listed == wrapped


def test_fills_defaults_and_converts_to_an_immutable_ad(tmp_path: Path) -> None:
    (ad,) = load_inventory(write(tmp_path, "ads.yaml", [entry()]))
    assert ad == Ad(
        id="acme-1",
        advertiser="Acme",
        title="Acme rockets",
        body="Rockets for every road runner.",
        url="https://acme.example/rockets",
        keywords=("rocket", "launch"),
        topics=(),
        weight=1.0,
        starts=None,
        ends=None,
        budget=None,
        house=False,
    )


def test_reads_every_optional_field(tmp_path: Path) -> None:
    document = [
        entry(
            topics=["space"],
            weight=2.5,
            budget=100,
            house=True,
            start="2025-01-01",
            end="2025-01-31",
        )
    ]
    (ad,) = load_inventory(write(tmp_path, "ads.json", document))
    assert (ad.topics, ad.weight, ad.budget, ad.house) == (("space",), 2.5, 100, True)


def test_strips_surrounding_whitespace(tmp_path: Path) -> None:
    (ad,) = load_inventory(write(tmp_path, "ads.yaml", [entry(" a ", title="  Title ")]))
    assert (ad.id, ad.title) == ("a", "Title")


# --- dates -----------------------------------------------------------------------------------


def test_bare_dates_cover_whole_utc_days(tmp_path: Path) -> None:
    # YAML turns these into date objects; the JSON twin below sends them as strings.
    path = tmp_path / "ads.yaml"
    path.write_text(
        "- {id: a, advertiser: A, title: T, body: B, url: 'https://a.example', keywords: [x],"
        " start: 2025-03-01, end: 2025-03-01}\n",
        "utf-8",
    )
    (ad,) = load_inventory(str(path))
    assert ad.starts == datetime(2025, 3, 1, tzinfo=UTC)
    assert ad.ends == datetime(2025, 3, 2, tzinfo=UTC)
    (same,) = load_inventory(
        write(
            tmp_path,
            "ads.json",
            [entry("a", title="T", body="B", start="2025-03-01", end="2025-03-01")],
        )
    )
    assert (same.starts, same.ends) == (ad.starts, ad.ends)


def test_datetimes_keep_their_offset_and_naive_ones_are_utc(tmp_path: Path) -> None:
    document = [entry(start="2025-03-01T09:30:00+02:00", end="2025-03-02T18:00:00")]
    (ad,) = load_inventory(write(tmp_path, "ads.json", document))
    assert ad.starts == datetime(2025, 3, 1, 7, 30, tzinfo=UTC)
    assert ad.starts is not None and ad.starts.utcoffset() == timedelta(hours=2)
    assert ad.ends == datetime(2025, 3, 2, 18, 0, tzinfo=UTC)


def test_yaml_timestamps_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "ads.yaml"
    path.write_text(
        "- {id: a, advertiser: A, title: T, body: B, url: 'https://a.example', keywords: [x],"
        " start: 2025-03-01T09:00:00Z, end: 2025-03-01 18:00:00}\n",
        "utf-8",
    )
    (ad,) = load_inventory(str(path))
    assert ad.starts == datetime(2025, 3, 1, 9, tzinfo=UTC)
    assert ad.ends == datetime(2025, 3, 1, 18, tzinfo=UTC)


def test_is_active_within_start_inclusive_end_exclusive(tmp_path: Path) -> None:
    (ad,) = load_inventory(
        write(tmp_path, "ads.json", [entry(start="2025-03-01", end="2025-03-31")])
    )
    assert not ad.is_active(datetime(2025, 2, 28, 23, 59, 59, tzinfo=UTC))
    assert ad.is_active(datetime(2025, 3, 1, tzinfo=UTC))
    assert ad.is_active(datetime(2025, 3, 31, 23, 59, 59, tzinfo=UTC))
    assert not ad.is_active(datetime(2025, 4, 1, tzinfo=UTC))
    # An instant in another zone is compared as the same instant.
    assert ad.is_active(datetime(2025, 4, 1, 1, 0, tzinfo=timezone(timedelta(hours=2))))
    # A naive `now` is taken as UTC rather than raising.
    assert ad.is_active(datetime(2025, 3, 15))


def test_an_ad_without_dates_is_always_active(tmp_path: Path) -> None:
    (ad,) = load_inventory(write(tmp_path, "ads.json", [entry()]))
    assert ad.is_active(datetime(1970, 1, 1, tzinfo=UTC))
    assert ad.is_active(datetime(2999, 1, 1, tzinfo=UTC))


# --- errors ----------------------------------------------------------------------------------


def test_bad_url_message_names_file_entry_id_and_problem(tmp_path: Path) -> None:
    path = write(
        tmp_path, "ads.yaml", [entry("a"), entry("b"), entry("acme-1", url="ftp://acme.example")]
    )
    assert (
        load_error(path)
        == "ads.yaml: entry 3 (id 'acme-1'): url: must start with http:// or https://"
    )


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"title": None}, "title: field required"),
        ({"keywords": "rocket"}, "keywords: input should be a valid list"),
        ({"keywords": ["rocket", 7]}, "keywords[1]: input should be a valid string"),
        ({"colour": "red"}, "colour: extra inputs are not permitted"),
        ({"bad\nkey": 1}, "['bad\\nkey']: extra inputs are not permitted"),
        ({"weight": 0}, "weight: input should be greater than 0"),
        ({"weight": -1.5}, "weight: input should be greater than 0"),
        ({"weight": "heavy"}, "weight: input should be a valid number"),
        ({"budget": 0}, "budget: input should be greater than or equal to 1"),
        ({"budget": 2.5}, "budget: input should be a valid integer"),
        ({"house": "yes"}, "house: input should be a valid boolean"),
        ({"url": "https://"}, "url: must include a host name"),
        (
            {"url": "https://acme.example/a b"},
            "url: must not contain whitespace or control characters",
        ),
        ({"url": "javascript:alert(1)"}, "url: must start with http:// or https://"),
        ({"body": "   "}, "body: string should have at least 1 character"),
        ({"start": "2025-02-01", "end": "2025-01-31"}, "end: must be after start"),
        (
            {"start": "2025-02-01T10:00:00Z", "end": "2025-02-01T12:00:00+02:00"},
            "end: must be after start",
        ),
        ({"end": "next week"}, "end: 'next week' is not an ISO date or datetime"),
    ],
)
def test_entry_problems(tmp_path: Path, overrides: dict[str, Any], problem: str) -> None:
    message = load_error(write(tmp_path, "ads.json", [entry(**overrides)]))
    assert message.startswith(f"ads.json: entry 1 (id 'acme-1'): {problem}")
    assert "\n" not in message


def test_every_problem_of_the_entry_is_listed_on_one_line(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, "ads.json", [entry(url="ftp://x", weight=0)]))
    assert message == (
        "ads.json: entry 1 (id 'acme-1'): url: must start with http:// or https://; "
        "weight: input should be greater than 0"
    )


def test_entry_without_an_id_is_named_by_its_number(tmp_path: Path) -> None:
    assert load_error(write(tmp_path, "ads.json", [entry(), entry(None)])) == (
        "ads.json: entry 2: id: field required"
    )


def test_ids_are_restricted_to_a_safe_alphabet(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, "ads.json", [entry("acme 1")]))
    assert message.startswith("ads.json: entry 1 (id 'acme 1'): id: must start with a letter")


def test_duplicate_ids(tmp_path: Path) -> None:
    path = write(tmp_path, "ads.yaml", [entry("a"), entry("b"), entry("a")])
    assert load_error(path) == "ads.yaml: entry 3 (id 'a'): id: duplicate of entry 1"


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("ads.yaml", "ads: []\n", "ads.yaml: no ads declared (the list is empty)"),
        ("ads.json", "[]", "ads.json: no ads declared (the list is empty)"),
        ("ads.yaml", "", "ads.yaml: no ads declared (the file is empty)"),
        ("ads.yaml", "ads: [\n  - x", "ads.yaml: invalid YAML at line 2, column 3: "),
        ("ads.json", '{"ads": [}', "ads.json: invalid JSON at line 1, column 10: Expecting value"),
        (
            "ads.json",
            '{"adz": []}',
            "ads.json: unexpected top-level key 'adz' (expected only 'ads')",
        ),
        (
            "ads.yaml",
            "just a string\n",
            "ads.yaml: expected a list of ads or a mapping with an 'ads'",
        ),
        ("ads.yaml", "ads: 3\n", "ads.yaml: expected a list of ads or a mapping with an 'ads'"),
        ("ads.yaml", "- 42\n", "ads.yaml: entry 1: expected a mapping of ad fields, got a number"),
        ("ads.txt", "", "ads.txt: unsupported extension (use .yaml, .yml or .json)"),
    ],
)
def test_file_level_problems(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(text, "utf-8")
    got = load_error(str(path))
    assert got.startswith(message)
    assert "\n" not in got


def test_missing_file(tmp_path: Path) -> None:
    assert load_error(str(tmp_path / "nope.yaml")) == "nope.yaml: file not found"


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "ads.yaml"
    path.write_bytes(b"- id: \xff\xfe\n")
    assert load_error(str(path)) == "ads.yaml: not valid UTF-8"


def test_inventory_error_is_a_value_error() -> None:
    assert issubclass(InventoryError, ValueError)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=100, deadline=None)
@given(
    document=_json_values
    | st.lists(st.dictionaries(st.sampled_from(sorted(entry())), _json_values))
)
@example(document=[{"\n": 1}])
def test_any_json_document_loads_or_raises_inventory_error(
    tmp_path_factory: pytest.TempPathFactory, document: object
) -> None:
    path = tmp_path_factory.getbasetemp() / "fuzz-ads.json"  # one file, rewritten each example
    path.write_text(json.dumps(document), "utf-8")
    try:
        ads = load_inventory(str(path))
    except InventoryError as error:
        assert str(error).startswith(f"{path}: ")
        assert "\n" not in str(error)
    else:
        assert ads and all(isinstance(ad, Ad) for ad in ads)


# --- the built-in house inventory ------------------------------------------------------------


def test_builtin_house_ads() -> None:
    ads = load_inventory(None)
    assert len(ads) == 4
    assert len({ad.id for ad in ads}) == 4
    for ad in ads:
        assert ad.house
        assert ad.advertiser == "Echo AI"
        assert ad.title.startswith("Echo AI")
        assert ad.url.startswith("https://")
        assert ad.keywords
        assert ad.is_active(datetime(2030, 1, 1, tzinfo=UTC))
    titles = " ".join(ad.title for ad in ads)
    for product in ("Pro", "Teams", "developers", "Voice"):
        assert product in titles


def test_builtin_house_ads_are_loaded_fresh_but_equal() -> None:
    assert load_inventory(None) == load_inventory(None)
