"""The `echo-stream` command: flags, a configuration check, the start banner, then uvicorn.

Flags override the environment (`--port 9000` is `PORT=9000`) by setting the variable, so every
worker process, which reads its settings afresh, sees the same values.
"""

from __future__ import annotations

import argparse
import logging
import logging.config
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from echo_stream import __version__
from echo_stream.settings import Settings, split_list
from echo_stream.state import AppState

log = logging.getLogger("echo_stream")

_LOOPBACK = ("127.0.0.1", "localhost", "::1")
_FLAG_VARIABLES = {"host": "HOST", "port": "PORT", "workers": "WORKERS", "config": "ECHO_CONFIG"}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line; an unknown flag exits with status 2 and the usage."""
    parser = argparse.ArgumentParser(
        prog="echo-stream",
        description="Echo Stream: an OpenAI-compatible streaming gateway. Every setting is an "
        "environment variable (see .env.example); these flags override the common ones.",
    )
    parser.add_argument("--version", action="version", version=f"echo-stream {__version__}")
    parser.add_argument("--host", help="interface to listen on (HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (PORT, default 8000)")
    parser.add_argument("--workers", type=int, help="worker processes (WORKERS, default 1)")
    parser.add_argument("--config", help="model and key-limit file (ECHO_CONFIG)")
    parser.add_argument(
        "--check",
        action="store_true",
        help="validate the settings and config files, list the routes, and exit",
    )
    return parser.parse_args(argv)


def apply_flags(args: argparse.Namespace) -> None:
    """Turn the flags into the environment variables they stand for."""
    for name, variable in _FLAG_VARIABLES.items():
        value = getattr(args, name)
        if value is not None:
            os.environ[variable] = str(value)


def settings_secrets(settings: Settings) -> list[str]:
    """Every secret value in the settings, for the log redactor."""
    found: list[str] = []
    for value in settings.__dict__.values():
        if isinstance(value, SecretStr):
            found.extend(split_list(value.get_secret_value()))
    return found


def is_loopback(host: str) -> bool:
    """True when `host` accepts connections from this machine only."""
    return host in _LOOPBACK or host.startswith("127.")


def provider_names(settings: Settings) -> list[str]:
    """Providers with a key (or an OpenAI-compatible base URL)."""
    names = [
        name
        for name, configured in (
            ("openai", settings.openai_api_key or settings.openai_base_url),
            ("anthropic", settings.anthropic_api_key),
            ("google", settings.google_api_key),
        )
        if configured
    ]
    return names or ["mock only (no provider key set)"]


def open_network_warning(settings: Settings) -> str | None:
    """The warning for a gateway that spends provider keys for anyone who can reach it."""
    if is_loopback(settings.host) or settings.client_keys():
        return None
    if provider_names(settings)[0].startswith("mock only"):
        return None
    return (
        f"WARNING: listening on {settings.host} with provider keys and no ECHO_API_KEYS: anyone "
        "who can reach this port can spend your provider credit. Set ECHO_API_KEYS, or listen "
        "on 127.0.0.1 (HOST), or make sure only trusted clients can reach it."
    )


def banner(settings: Settings, state: AppState) -> str:
    """The start-up block: version, providers, models, ads, stores, address, a curl to try."""
    host = "localhost" if settings.host in ("0.0.0.0", "::") else settings.host
    url = f"http://{host}:{settings.port}"
    store = "redis" if settings.redis_url else "memory"
    ads = (
        f"rate {settings.ad_injection_rate:g}, format {settings.ad_format}, "
        f"placement {settings.ad_placement}"
        if settings.ad_injection_rate > 0
        else "off"
    )
    limits = "per-key limits on" if state.ops and state.ops.limiter else "no per-key limits"
    auth = "client keys required" if settings.client_keys() else "open (no ECHO_API_KEYS)"
    key = ' -H "Authorization: Bearer $KEY"' if settings.client_keys() else ""
    lines = [
        f"Echo Stream {__version__}",
        f"  providers : {', '.join(provider_names(settings))}",
        f"  models    : {len(state.router.models())} listed",
        f"  ads       : {ads}",
        f"  stores    : ads, limits, usage and session streams in {store}; {limits}",
        f"  history   : conversations in {_database(settings)}",
        f"  access    : {auth}; logs {settings.log_format}",
        f"  listening : {settings.host}:{settings.port}, {settings.workers} worker(s)",
        f"  try       : curl {url}/v1/chat/completions{key} -H 'Content-Type: application/json'"
        ' -d \'{"model": "echo-mock", "messages": [{"role": "user", "content": '
        '"Hi"}]}\'',
    ]
    return "\n".join(lines)


def _database(settings: Settings) -> str:
    # Never the URL itself: it may carry a password.
    if settings.database_url:
        return "the database at DATABASE_URL"
    return f"SQLite under {settings.data_dir}/"


def check_report(settings: Settings, state: AppState, endpoints: list[str]) -> Iterator[str]:
    """What `--check` prints: the settings summary, the model routes and the endpoints."""
    yield banner(settings, state)
    yield "model routes:"
    for card in state.router.models():
        route = state.router.resolve(card.id)
        yield f"  {card.id} -> {route.provider.name}:{route.upstream_model}"
    yield "endpoints:"
    yield from (f"  {endpoint}" for endpoint in endpoints)


def endpoints(app: Any) -> list[str]:
    """`METHODS /path` for every route of the FastAPI app inside the middleware layers."""
    while not hasattr(app, "routes") and hasattr(app, "app"):
        app = app.app
    methods: dict[str, set[str]] = {}
    for route in _routes(getattr(app, "routes", ())):
        methods.setdefault(route.path, set()).update(getattr(route, "methods", None) or ["WS"])
    return [f"{','.join(sorted(methods[path]))} {path}" for path in sorted(methods)]


def _routes(routes: Any) -> Iterator[Any]:
    for route in routes:
        if hasattr(route, "path"):
            yield route
        elif (included := getattr(route, "original_router", None)) is not None:
            yield from _routes(included.routes)  # FastAPI keeps included routers nested


def prepare_metrics_dir(workers: int) -> None:
    """With several workers (or a directory named by the operator), give prometheus-client one
    empty directory that every process of this run writes its figures to."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        if workers > 1:
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="echo-metrics-")
        return
    path = Path(directory)
    if path.exists():
        for stale in path.glob("*.db"):  # values from a previous run would add up
            stale.unlink()
    else:
        path.mkdir(parents=True)


def remove_metrics_dir() -> None:
    """Remove the directory `prepare_metrics_dir` created (never one the operator named)."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if Path(directory).name.startswith("echo-metrics-"):
        shutil.rmtree(directory, ignore_errors=True)


def fail(message: str) -> None:
    """Stop with a configuration error."""
    print(f"echo-stream: configuration error: {message}", file=sys.stderr)
    raise SystemExit(2)
