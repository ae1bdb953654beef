"""Retention: conversations not updated for `CONVERSATION_RETENTION_DAYS` are hard-deleted."""

from __future__ import annotations

import asyncio
import logging
import time

from echo_stream.conversations.repository import ConversationRepository

log = logging.getLogger(__name__)

DAY = 86_400.0


async def purge_expired(repository: ConversationRepository, days: float, now: float) -> int:
    """Delete every conversation last updated more than `days` before `now`; how many went."""
    deleted = await repository.delete_older_than(now - days * DAY)
    if deleted:
        log.info("retention: deleted %d conversations older than %g days", deleted, days)
    return deleted


async def retention_loop(
    repository: ConversationRepository, days: float, interval: float = 3600.0
) -> None:
    """Purge at start-up and then every `interval` seconds, until cancelled."""
    while True:
        try:
            await purge_expired(repository, days, time.time())
        except Exception:
            log.exception("retention: purge failed; trying again later")
        await asyncio.sleep(interval)
