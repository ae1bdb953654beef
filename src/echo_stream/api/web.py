"""The web chat page at `/`, the ad dashboard at `/admin`, and their static files.

Everything is served from the package (`echo_stream/web/static/`), with a strict
Content-Security-Policy: scripts, styles and connections only from this origin, no inline script
or style, no plugins, no framing. The pages hold no secrets; the keys they need are asked for in
the browser and sent as `Authorization` headers to the API like any other client's.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, Request
from starlette.responses import FileResponse, Response

from echo_stream.errors import NotFound
from echo_stream.state import AppState

router = APIRouter()

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "media-src 'self' blob: data:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
}


def static_root() -> Path:
    """The packaged static directory on disk (wheels and editable installs both unpack it)."""
    return Path(str(files("echo_stream.web") / "static")).resolve()


def _file(request: Request, relative: str, *, cache: str) -> Response:
    state: AppState = request.app.state.echo
    if not state.settings.web_chat:
        raise NotFound("The web chat is switched off (WEB_CHAT=false)")
    root = static_root()
    path = (root / relative).resolve()
    # Only regular files inside the static directory, with a type we serve: no traversal,
    # no directory listings, no licence text served as HTML.
    if not path.is_relative_to(root) or not path.is_file() or path.suffix not in _TYPES:
        raise NotFound("No such file")
    headers = {**SECURITY_HEADERS, "Cache-Control": cache}
    return FileResponse(path, media_type=_TYPES[path.suffix], headers=headers)


@router.get("/", include_in_schema=False)
async def chat_page(request: Request) -> Response:
    """The web chat page."""
    return _file(request, "index.html", cache="no-cache")


@router.get("/admin", include_in_schema=False)
async def admin_page(request: Request) -> Response:
    """The ad dashboard (it asks for an admin key and reads `/v1/ads/stats`)."""
    return _file(request, "admin.html", cache="no-cache")


@router.get("/static/{name:path}", include_in_schema=False)
async def static_file(name: str, request: Request) -> Response:
    """A script, style sheet or icon of the pages (revalidated, so upgrades show at once)."""
    return _file(request, name, cache="no-cache")
