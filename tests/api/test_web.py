"""The page, the dashboard and their static files: served from the package, under a strict CSP."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from echo_stream.api.web import static_root
from tests.conftest import make_app

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("path", ["/", "/admin", "/static/chat.js", "/static/app.css"])
def test_pages_and_files_carry_a_strict_csp(server: Callable[..., str], path: str) -> None:
    base = server(make_app())
    response = httpx.get(base + path)
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "object-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"


def test_content_types(server: Callable[..., str]) -> None:
    base = server(make_app())
    assert httpx.get(base + "/").headers["content-type"].startswith("text/html")
    assert httpx.get(base + "/static/chat.js").headers["content-type"].startswith("text/javascript")
    assert httpx.get(base + "/static/vendor/purify.min.js").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/static/../api/web.py",
        "/static/%2e%2e/%2e%2e/settings.py",
        "/static/vendor/dompurify.LICENSE",
        "/static/vendor/",
        "/static/missing.js",
    ],
)
def test_nothing_outside_the_static_files_is_served(server: Callable[..., str], path: str) -> None:
    base = server(make_app())
    assert httpx.get(base + path).status_code == 404


def test_the_web_chat_can_be_switched_off(server: Callable[..., str]) -> None:
    base = server(make_app(web_chat=False))
    assert httpx.get(base + "/").status_code == 404
    assert httpx.get(base + "/static/chat.js").status_code == 404


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


@pytest.mark.parametrize("name", ["index.html", "admin.html"])
def test_pages_have_no_inline_script_no_inline_style_and_no_cdn(name: str) -> None:
    parser = _Tags()
    parser.feed((static_root() / name).read_text())
    for tag, attrs in parser.tags:
        assert not any(attr.startswith("on") for attr in attrs), (tag, attrs)
        assert "style" not in attrs and tag != "style"
        if tag == "script":
            assert (attrs.get("src") or "").startswith("/static/"), attrs
        if tag == "link":
            assert (attrs.get("href") or "").startswith("/static/"), attrs
    for script in static_root().glob("*.js"):
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", script.read_text()), script


def test_the_wheel_carries_every_static_file() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["echo_stream"]
    package = ROOT / "src" / "echo_stream"
    files = [p for p in static_root().rglob("*") if p.is_file()]
    assert {"index.html", "admin.html", "chat.js", "purify.min.js"} <= {p.name for p in files}
    for path in files:
        relative = str(path.relative_to(package))
        assert any(fnmatch.fnmatchcase(relative, pattern) for pattern in patterns), relative


def test_vendored_libraries_are_pinned_with_their_licences() -> None:
    vendor = static_root() / "vendor"
    versions = (vendor / "VERSIONS").read_text()
    for library, licence in [
        ("marked", "marked.LICENSE.md"),
        ("dompurify", "dompurify.LICENSE"),
        ("highlightjs", "highlight.LICENSE"),
    ]:
        assert library in versions.replace("@highlightjs/cdn-assets", "highlightjs")
        assert (vendor / licence).stat().st_size > 500
    script = (ROOT / "scripts" / "vendor-web.sh").read_text()
    assert "npm pack" in script
    for pinned in re.findall(r"^(?:MARKED|DOMPURIFY|HIGHLIGHT)=(\S+)$", script, re.M):
        assert pinned in versions
