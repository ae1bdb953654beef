"""`GET /v1/models` and `GET /v1/models/{id}`: answered from memory, never from a provider."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from echo_stream.api.edge import require_key
from echo_stream.errors import ModelNotFound
from echo_stream.routing import ModelCard
from echo_stream.state import AppState

router = APIRouter()


def _card(card: ModelCard, created: int) -> dict[str, Any]:
    return {"id": card.id, "object": "model", "created": created, "owned_by": card.owned_by}


@router.get("/v1/models")
async def list_models(request: Request) -> dict[str, Any]:
    """The models this gateway serves."""
    state: AppState = request.app.state.echo
    require_key(request, state.client_keys)
    created = request.app.state.started
    return {"object": "list", "data": [_card(c, created) for c in state.router.models()]}


@router.get("/v1/models/{model_id:path}")
async def get_model(model_id: str, request: Request) -> dict[str, Any]:
    """One model, or 404."""
    state: AppState = request.app.state.echo
    require_key(request, state.client_keys)
    card = state.router.card(model_id)
    if card is None:
        raise ModelNotFound(f"The model '{model_id}' does not exist", param="model")
    return _card(card, request.app.state.started)
