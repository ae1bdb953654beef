"""The app factory: settings in, a ready FastAPI app out. No work happens at import time."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp

from echo_stream import __version__
from echo_stream.ads.engine import AdEngine
from echo_stream.api import (
    ads,
    chat,
    conversations,
    echov2,
    health,
    lobe,
    models,
    operations,
    session,
    voice,
    web,
)
from echo_stream.api.fastpath import ChatFastPath
from echo_stream.api.observe import RequestObserver
from echo_stream.config_file import ConfigError, load_config
from echo_stream.conversations.lifecycle import conversation_store
from echo_stream.errors import EchoError, InvalidRequest
from echo_stream.ops.gc_tuning import tune_collector
from echo_stream.ops.keys import read_sections
from echo_stream.ops.logs import install_access_log_redaction, skip_unused_record_fields
from echo_stream.ops.runtime import build_operations
from echo_stream.routing import build_router
from echo_stream.sessions.service import SessionService
from echo_stream.settings import Settings
from echo_stream.speech.registry import build_speech
from echo_stream.state import AppState
from echo_stream.streaming.response import error_response

log = logging.getLogger("echo_stream")

_READY_TIMEOUT_S = 2.0


def build_state(settings: Settings, transport: httpx.AsyncBaseTransport | None = None) -> AppState:
    """Everything the handlers share; raises `ConfigError` for a bad config file.

    `transport` replaces the network for every upstream (tests).
    """
    config = settings.echo_config
    # A file with only a keys: section (limits) leaves the model list at its defaults.
    has_models = bool(config) and "models" in read_sections(config)  # type: ignore[arg-type]
    declarations = load_config(config) if config and has_models else None
    try:
        router = build_router(settings, declarations, transport)
    except ConfigError as exc:
        raise ConfigError(f"{settings.echo_config}: {exc}") from exc
    ads = AdEngine.from_settings(settings) if settings.ad_injection_rate > 0 else None
    return AppState(
        settings=settings,
        router=router,
        ads=ads,
        client_keys=settings.client_keys(),
        admin_keys=settings.admin_keys(),
        speech=build_speech(settings),
        sessions=SessionService.from_settings(settings),
        ops=build_operations(settings),
    )


def _database_ping(state: AppState) -> Callable[[], Awaitable[None]]:
    """The readiness check of the conversation store (SQLite or PostgreSQL), bounded in time."""

    async def ping() -> None:
        if state.conversations is None:
            raise RuntimeError("the conversation store is not open")
        async with asyncio.timeout(_READY_TIMEOUT_S):
            await state.conversations.ping()

    return ping


def _install_error_handlers(app: FastAPI) -> None:
    async def on_echo_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, EchoError)
        return error_response(exc)

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        return error_response(InvalidRequest(str(exc)))

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        error = EchoError(str(exc.detail), status=exc.status_code)
        error.type = "invalid_request_error" if exc.status_code < 500 else "server_error"
        return error_response(error)

    app.add_exception_handler(EchoError, on_echo_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(HTTPException, on_http_error)


def create_app(settings: Settings | None = None, state: AppState | None = None) -> ASGIApp:
    """Build the gateway app (uvicorn calls this with no arguments, as a factory)."""
    settings = settings or (state.settings if state else Settings())
    app_state = state or build_state(settings)
    ops = app_state.ops or build_operations(settings)
    app_state.ops = ops
    observer: RequestObserver | None = None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ops.drain.install_signal_hook()
        async with AsyncExitStack() as stack:
            # Closed in reverse order, each even if another fails: session generations first
            # (they stream through the router and then call n8n back), metrics last.
            stack.push_async_callback(ops.aclose)
            if observer is not None:
                stack.push_async_callback(observer.aclose)
            await stack.enter_async_context(conversation_store(app_state))
            if app_state.ads is not None:
                stack.push_async_callback(app_state.ads.aclose)
            stack.push_async_callback(app_state.router.aclose)
            if app_state.speech is not None:
                stack.push_async_callback(app_state.speech.aclose)
            stack.push_async_callback(app_state.sessions.aclose)
            if all(name != "database" for name, _ in ops.readiness):
                ops.readiness.append(("database", _database_ping(app_state)))
            if settings.gc_tuning:
                tune_collector()
            yield

    app = FastAPI(title="Echo Stream", version=__version__, lifespan=lifespan)
    app.state.echo = app_state
    app.state.started = int(time.time())
    _install_error_handlers(app)
    install_access_log_redaction()  # stream tokens and keys never reach the access log
    skip_unused_record_fields()  # what our formatters never print is not gathered per line
    for module in (
        *(chat, models, health, ads, operations),  # the OpenAI API and the operator's endpoints
        *(echov2, conversations, voice, lobe, web, session),  # the other faces
    ):
        app.include_router(module.router)
    served: ASGIApp = ChatFastPath(app)
    if origins := settings.origins():
        served = CORSMiddleware(
            served,
            allow_origins=list(origins),
            allow_methods=["GET", "POST", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=["*"],
            expose_headers=["X-Conversation-Id", "X-Request-Id"],
        )
    observer = RequestObserver(served, ops)
    return observer
