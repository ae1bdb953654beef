"""`python -m echo_stream` / `echo-stream`: start the gateway with uvicorn."""

from __future__ import annotations

import sys

import uvicorn
from pydantic import ValidationError

from echo_stream.ads.inventory import InventoryError
from echo_stream.app import build_state
from echo_stream.config_file import ConfigError
from echo_stream.settings import Settings


def main() -> None:
    """Validate the configuration, then serve (honours HOST, PORT, WORKERS, LOG_LEVEL)."""
    try:
        settings = Settings()
        build_state(settings)  # fail fast, with a clear message, before any worker starts
    except (ConfigError, InventoryError, ValidationError, ValueError) as exc:
        print(f"echo-stream: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    uvicorn.run(
        "echo_stream.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        access_log=settings.log_level == "debug",
        loop="uvloop",
        http="httptools",
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
