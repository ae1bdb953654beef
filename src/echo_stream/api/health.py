"""`/health` (liveness: the process serves) and `/ready` (readiness: its dependencies answer
and it is not draining). Neither calls a provider."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from echo_stream import __version__
from echo_stream.state import AppState

router = APIRouter()
_CHECK_TIMEOUT_S = 3.0


@router.get("/health")
@router.head("/health", include_in_schema=False)
async def health() -> dict[str, str]:
    """The process is up and serving."""
    return {"status": "ok", "version": __version__}


@router.get("/ready", response_model=None)
@router.head("/ready", response_model=None, include_in_schema=False)
async def ready(request: Request) -> Response:
    """200 when every readiness check passes; 503 naming what is down (or that it drains)."""
    state: AppState = request.app.state.echo
    down: dict[str, str] = {}
    checks: dict[str, str] = {}
    if state.ops is not None:
        if state.ops.drain.draining:
            down["server"] = "draining (shutting down)"
        names = [name for name, _ in state.ops.readiness]
        results = await asyncio.gather(
            *(_run(check) for _, check in state.ops.readiness), return_exceptions=False
        )
        for name, problem in zip(names, results, strict=True):
            checks[name] = problem or "ok"
            if problem:
                down[name] = problem
    body: dict[str, Any] = {"status": "ok" if not down else "unavailable", "checks": checks}
    if down:
        body["down"] = down
    return JSONResponse(body, status_code=503 if down else 200)


async def _run(check: Any) -> str | None:
    """None when the check passes, else a short reason."""
    try:
        async with asyncio.timeout(_CHECK_TIMEOUT_S):
            await check()
    except TimeoutError:
        return f"no answer within {_CHECK_TIMEOUT_S:g} s"
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"[:200]
    return None
