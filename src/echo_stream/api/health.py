"""`GET /health`: liveness, without calling any provider."""

from __future__ import annotations

from fastapi import APIRouter

from echo_stream import __version__

router = APIRouter()


@router.get("/health")
async def health() -> dict[str, str]:
    """The process is up and serving."""
    return {"status": "ok", "version": __version__}
