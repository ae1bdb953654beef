"""Ad measurement endpoints: the click redirect and the statistics report."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Query, Request
from starlette.responses import RedirectResponse, Response

from echo_stream.ads.engine import AdEngine
from echo_stream.ads.timeline import BUCKET_S, MAX_MINUTES
from echo_stream.api.edge import require_admin
from echo_stream.errors import NotFound
from echo_stream.ops.record import current_record
from echo_stream.state import AppState

router = APIRouter()


@router.get("/v1/ads/click/{impression_id}", response_model=None)
async def click(impression_id: str, request: Request) -> Response:
    """Count the click on an impression and send the browser on to the advertiser."""
    state: AppState = request.app.state.echo
    if state.ads is None or len(impression_id) > 64:
        raise NotFound("Unknown or expired ad link")
    url = await state.ads.store.record_click(impression_id)
    if url is None:
        raise NotFound("Unknown or expired ad link")
    if (record := current_record()) is not None:
        record.ad_clicks += 1
    return RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})


def _admin_ads(request: Request) -> AdEngine:
    """The ad engine, once the request has shown an admin key."""
    require_admin(request, "ad statistics")
    state: AppState = request.app.state.echo
    if state.ads is None:
        raise NotFound("Ads are off (AD_INJECTION_RATE=0)", code="ads_disabled")
    return state.ads


@router.get("/v1/ads/stats")
async def stats(request: Request) -> dict[str, Any]:
    """Impressions, clicks and CTR per ad, fill rate and no-ad reasons (admin key required)."""
    return (await _admin_ads(request).store.stats()).to_dict()


@router.get("/v1/ads/timeline")
async def timeline(
    request: Request, minutes: int = Query(60, ge=1, le=MAX_MINUTES)
) -> dict[str, Any]:
    """Per-minute responses, placements, impressions and clicks, oldest first (admin key)."""
    points = await _admin_ads(request).store.timeline(minutes, time.time())
    return {"bucket_seconds": BUCKET_S, "points": [point.to_dict() for point in points]}
