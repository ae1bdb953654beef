"""Operator endpoints: `GET /metrics` (Prometheus) and `GET /v1/usage` (usage per key, model
and day). Both need an `ECHO_ADMIN_KEYS` key; `METRICS_OPEN=true` opens `/metrics` for a
scraper on a private network."""

from __future__ import annotations

import re
import time
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from echo_stream.api.edge import require_admin
from echo_stream.errors import InvalidRequest
from echo_stream.ops.metrics import CONTENT_TYPE
from echo_stream.ops.runtime import Operations
from echo_stream.state import AppState

router = APIRouter()
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _ops(request: Request) -> Operations:
    state: AppState = request.app.state.echo
    assert state.ops is not None
    return state.ops


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus metrics (admin key unless `METRICS_OPEN=true`)."""
    if not request.app.state.echo.settings.metrics_open:
        require_admin(request, "/metrics")
    return Response(_ops(request).metrics.render(), media_type=CONTENT_TYPE)


@router.get("/v1/usage")
async def usage(request: Request, date: str | None = None) -> dict[str, Any]:
    """Requests and tokens per client key and model on one UTC day (default today)."""
    require_admin(request, "usage reports")
    day = date or time.strftime("%Y-%m-%d", time.gmtime())
    if not _DAY.fullmatch(day):
        raise InvalidRequest("date must be YYYY-MM-DD", param="date")
    ops = _ops(request)
    names = ops.keys.names() if ops.keys is not None else {}
    rows = [{**asdict(row), "key_name": names.get(row.key_id)} for row in await ops.usage.rows(day)]
    return {"object": "list", "date": day, "data": rows}
