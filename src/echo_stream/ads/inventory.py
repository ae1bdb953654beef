"""The ad inventory: the `Ad` record and loading it from `ADS_FILE` or the built-in house ads.

An ads file is YAML (`.yaml`/`.yml`) or JSON (`.json`), either a top-level list of ads or a
mapping `{"ads": [...]}`. Every entry is validated by a strict pydantic model; the first bad
entry raises `InventoryError` with a one-line message naming the file, the entry (counted from
1, with its id when it has one) and every problem in it, e.g.

    ads.yaml: entry 3 (id 'acme-1'): url: must start with http:// or https://

Dates: a bare date for `start` means midnight UTC that day; a bare date for `end` means the
end of that day (the campaign runs *through* it). Datetimes without an offset are UTC.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from importlib import resources
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

__all__ = ["Ad", "InventoryError", "load_inventory"]

_HOUSE_ADS_RESOURCE = "house_ads.yaml"
_SUFFIXES = {".yaml": "YAML", ".yml": "YAML", ".json": "JSON"}
# Ids end up in tracking URLs, Redis keys and logs, so keep them to a boring alphabet.
_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")


class InventoryError(ValueError):
    """An ads file that cannot be used; the message names the file, the entry and the problem."""


@dataclass(frozen=True, slots=True)
class Ad:
    """One sponsored (or house) ad, validated and ready to target and render."""

    id: str
    advertiser: str
    title: str
    body: str
    url: str
    keywords: tuple[str, ...]
    topics: tuple[str, ...]
    weight: float
    starts: datetime | None
    ends: datetime | None
    budget: int | None
    house: bool

    def is_active(self, now: datetime) -> bool:
        """Whether `now` is within [starts, ends); a naive `now` is taken as UTC."""
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        if self.starts is not None and now < self.starts:
            return False
        return self.ends is None or now < self.ends


def _parse_when(value: object) -> object:
    """Turn an ISO string into a date or datetime; YAML already yields date/datetime objects."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    try:
        return date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{value!r} is not an ISO date or datetime (e.g. 2025-01-31 or 2025-01-31T09:00:00Z)"
        ) from None


def _as_utc(when: date | datetime, *, end_of_day: bool) -> datetime:
    """A timezone-aware datetime for a start/end value (naive means UTC)."""
    if isinstance(when, datetime):
        return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    start = datetime.combine(when, time.min, tzinfo=UTC)
    return start + timedelta(days=1) if end_of_day else start


_When = Annotated[datetime | date | None, BeforeValidator(_parse_when)]
_Text = Annotated[str, Field(min_length=1)]


class _AdEntry(BaseModel):
    """The wire shape of one ads-file entry."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    id: _Text
    advertiser: _Text
    title: _Text
    body: _Text
    url: _Text
    keywords: list[_Text]
    topics: list[_Text] = []
    weight: Annotated[float, Field(gt=0, allow_inf_nan=False, strict=True)] = 1.0
    start: _When = None
    end: _When = None
    budget: Annotated[int | None, Field(ge=1, strict=True)] = None
    house: Annotated[bool, Field(strict=True)] = False

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not _ID_RE.fullmatch(value):
            raise ValueError(
                "must start with a letter or digit and contain only letters, "
                "digits, '.', '_', ':' or '-'"
            )
        return value

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not value.lower().startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        if any(ch.isspace() or ord(ch) < 32 for ch in value):
            raise ValueError("must not contain whitespace or control characters")
        if not urlsplit(value).hostname:
            raise ValueError("must include a host name")
        return value

    @model_validator(mode="after")
    def _check_dates(self) -> _AdEntry:
        starts, ends = self.starts_utc(), self.ends_utc()
        if starts is not None and ends is not None and ends <= starts:
            raise ValueError("end: must be after start")
        return self

    def starts_utc(self) -> datetime | None:
        """The start as an aware datetime."""
        return None if self.start is None else _as_utc(self.start, end_of_day=False)

    def ends_utc(self) -> datetime | None:
        """The end as an aware datetime (a bare date includes that whole day)."""
        return None if self.end is None else _as_utc(self.end, end_of_day=True)

    def to_ad(self) -> Ad:
        """The immutable runtime record for this entry."""
        return Ad(
            id=self.id,
            advertiser=self.advertiser,
            title=self.title,
            body=self.body,
            url=self.url,
            keywords=tuple(self.keywords),
            topics=tuple(self.topics),
            weight=self.weight,
            starts=self.starts_utc(),
            ends=self.ends_utc(),
            budget=self.budget,
            house=self.house,
        )


def load_inventory(path: str | None) -> tuple[Ad, ...]:
    """Load and validate the ads in `path`, or the built-in house ads when `path` is None."""
    if path is None:
        text = resources.files("echo_stream.ads").joinpath(_HOUSE_ADS_RESOURCE).read_text("utf-8")
        return _parse_inventory(text, name=f"{_HOUSE_ADS_RESOURCE} (built-in)", kind="YAML")
    name = path
    kind = _SUFFIXES.get(Path(path).suffix.lower())
    if kind is None:
        raise InventoryError(f"{name}: unsupported extension (use .yaml, .yml or .json)")
    try:
        text = Path(path).read_text("utf-8")
    except FileNotFoundError:
        raise InventoryError(f"{name}: file not found") from None
    except UnicodeDecodeError:
        raise InventoryError(f"{name}: not valid UTF-8") from None
    except OSError as exc:
        raise InventoryError(f"{name}: cannot read: {exc.strerror or exc}") from None
    return _parse_inventory(text, name=name, kind=kind)


def _parse_inventory(text: str, *, name: str, kind: str) -> tuple[Ad, ...]:
    """Parse a whole ads document into validated ads."""
    entries = _entries(_parse_document(text, name=name, kind=kind), name=name)
    if not entries:
        raise InventoryError(f"{name}: no ads declared (the list is empty)")
    ads: list[Ad] = []
    first_seen: dict[str, int] = {}
    for number, raw in enumerate(entries, start=1):
        ad = _validate_entry(raw, number=number, name=name)
        if ad.id in first_seen:
            raise InventoryError(
                f"{name}: entry {number} (id {ad.id!r}): id: duplicate of entry {first_seen[ad.id]}"
            )
        first_seen[ad.id] = number
        ads.append(ad)
    return tuple(ads)


def _parse_document(text: str, *, name: str, kind: str) -> object:
    """Decode YAML or JSON text, turning parser errors into one-line `InventoryError`s."""
    if kind == "JSON":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise InventoryError(
                f"{name}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
            ) from None
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        where = ""
        if exc.problem_mark is not None:
            where = f" at line {exc.problem_mark.line + 1}, column {exc.problem_mark.column + 1}"
        problem = _one_line(exc.problem or str(exc))
        raise InventoryError(f"{name}: invalid YAML{where}: {problem}") from None
    except yaml.YAMLError as exc:
        raise InventoryError(f"{name}: invalid YAML: {_one_line(str(exc))}") from None


def _entries(document: object, *, name: str) -> list[object]:
    """The list of raw entries from either accepted top-level shape."""
    if document is None:
        raise InventoryError(f"{name}: no ads declared (the file is empty)")
    if isinstance(document, Mapping):
        unexpected = sorted(str(key) for key in document if key != "ads")
        if unexpected:
            raise InventoryError(
                f"{name}: unexpected top-level key {unexpected[0]!r} (expected only 'ads')"
            )
        if "ads" not in document:
            raise InventoryError(f"{name}: missing top-level key 'ads'")
        document = document["ads"]
    if not isinstance(document, list):
        raise InventoryError(
            f"{name}: expected a list of ads or a mapping with an 'ads' list, "
            f"got {_type_name(document)}"
        )
    return document


def _validate_entry(raw: object, *, number: int, name: str) -> Ad:
    """Validate one raw entry, naming it in any error."""
    where = f"{name}: entry {number}"
    if not isinstance(raw, Mapping):
        raise InventoryError(f"{where}: expected a mapping of ad fields, got {_type_name(raw)}")
    raw_id = raw.get("id")
    if isinstance(raw_id, str) and raw_id.strip():
        where += f" (id {raw_id.strip()!r})"
    try:
        return _AdEntry.model_validate(raw).to_ad()
    except ValidationError as exc:
        problems = "; ".join(_describe(error) for error in exc.errors())
        raise InventoryError(f"{where}: {problems}") from None


def _describe(error: Mapping[str, Any]) -> str:
    """One pydantic error as `field: problem`, in lower case like our own messages."""
    if error["type"] == "value_error":
        message = str(error["ctx"]["error"])
    else:
        message = error["msg"]
        message = message[:1].lower() + message[1:]
    field = "".join(_loc_part(part) for part in error["loc"]).lstrip(".")
    # Model-level errors carry their own "field: " prefix and an empty location.
    return f"{field}: {message}" if field else message


def _loc_part(part: str | int) -> str:
    """One step of an error location: `.name`, `[3]`, or a quoted odd key such as `['a b']`."""
    if isinstance(part, int):
        return f"[{part}]"
    return f".{part}" if re.fullmatch(r"[A-Za-z_][\w-]*", part) else f"[{part!r}]"


def _type_name(value: object) -> str:
    """A reader-friendly name for what a document actually held."""
    names = {
        str: "a string",
        int: "a number",
        float: "a number",
        bool: "a boolean",
        list: "a list",
        dict: "a mapping",
        type(None): "nothing",
    }
    return names.get(type(value), type(value).__name__)


def _one_line(text: str) -> str:
    """Collapse a multi-line parser message into one line."""
    return " ".join(text.split())
